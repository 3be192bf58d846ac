"""The FastAPI application: versioned routers, one error shape, auth, CORS, metrics, the web page."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse

from spyglass import __version__
from spyglass.api import errors
from spyglass.api.jobs import Jobs
from spyglass.api.metrics import Metrics
from spyglass.api.routers import ask, documents, items, search, system
from spyglass.engine import Engine


def create_app(engine: Engine) -> FastAPI:
    """An app around one engine: the model is loaded once, at start-up, and shared by every request."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(lambda: engine.store)  # loads the encoder, opens the catalog and index
        # Item stages catch up in the background (on the one ingest worker) while search serves.
        if engine.stages:
            app.state.jobs.submit("stages", "catalog", engine.catch_up)
        yield
        app.state.jobs.shutdown()
        engine.close()

    app = FastAPI(
        title="Spyglass",
        version=__version__,
        lifespan=lifespan,
        description="Multimodal search and grounded answers over your own files.",
    )
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.jobs = Jobs(on_report=metrics.record)
    errors.install(app)
    metrics.install(app)
    if engine.settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=engine.settings.api.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    for module in (search, ask, documents, items, system):
        app.include_router(module.router)

    page = resources.files("spyglass.api.web").joinpath("index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    return app
