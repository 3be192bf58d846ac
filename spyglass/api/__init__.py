"""HTTP API and web page (FastAPI): ``create_app(engine)``; ``spyglass serve`` runs it."""

from spyglass.api.app import create_app

__all__ = ["create_app"]
