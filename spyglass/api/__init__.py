"""HTTP API and web page (FastAPI): ``create_app(engine)``; ``serve`` runs it (``spyglass serve``)."""

from spyglass.api.app import create_app, serve

__all__ = ["create_app", "serve"]
