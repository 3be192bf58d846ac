"""The FastAPI application: versioned routers, one error shape, auth, CORS, metrics, the web page, MCP."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response

from spyglass import __version__, discovery
from spyglass.api import errors
from spyglass.api.body_limit import BodyLimit
from spyglass.api.jobs import Jobs
from spyglass.api.mcp import KeyGuard, build_server
from spyglass.api.metrics import Metrics
from spyglass.api.routers import ask, documents, items, models, search, system
from spyglass.engine import Engine

log = logging.getLogger(__name__)


def create_app(engine: Engine, *, announcement: discovery.Server | None = None) -> FastAPI:
    """An app around one engine, shared by every request: it opens the catalog and the query encoder
    at start-up (the exported text tower when there is one; the full model when first needed).

    ``announcement``: how ``serve`` announces this app to shells (its token is a read key here).
    """
    metrics = Metrics()
    agents = build_server(engine, confine=engine.settings.api.allowed_roots)
    agents_app = agents.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True, host=engine.settings.api.host
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(lambda: engine.store)  # loads the query encoder, opens the catalog and index
        # Item stages catch up in the background (on the one ingest worker) while search serves.
        app.state.jobs.resume()  # uploads and folders accepted before a crash or restart
        if engine.stages:
            app.state.jobs.submit("stages", "catalog")
        async with agents.session_manager.run():
            yield
        if announcement:
            discovery.withdraw(engine.settings.data_dir, announcement)
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
    app.state.jobs = Jobs(engine, on_report=metrics.record)
    errors.install(app)
    metrics.install(app)
    # Refused from its Content-Length, or cut off as it streams: a form body is otherwise spooled
    # to disk whole before any handler could check it.
    app.add_middleware(BodyLimit, limit=int(engine.settings.api.max_request_mb * 2**20))
    if engine.settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=engine.settings.api.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    for module in (search, ask, documents, items, models, system):
        app.include_router(module.router)
    for route in agents_app.routes:  # MCP for agents, behind the same keys
        app.add_route(route.path, KeyGuard(route.endpoint), methods=["GET", "POST", "DELETE"])

    app.state.local_token = announcement.token if announcement else None
    web = resources.files("spyglass.api.web")
    page = web.joinpath("index.html").read_text(encoding="utf-8")
    icon = web.joinpath("favicon.svg").read_bytes()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/favicon.svg", include_in_schema=False)
    @app.get("/favicon.ico", include_in_schema=False)  # where browsers look without a <link>
    async def favicon() -> Response:
        return Response(icon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    return app


def serve(engine: Engine, host: str, port: int) -> None:
    """Run the app under uvicorn, and announce it in the data directory once its port is listening.

    Announcing from the lifespan would be too early (uvicorn binds after start-up), and a
    shell that read the file then would find nothing listening.
    """
    import uvicorn

    announcement = discovery.describe(host, port, engine.settings.encoder.model)
    app = create_app(engine, announcement=announcement)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))

    def announce_when_listening() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.02)
        try:
            discovery.publish(engine.settings.data_dir, announcement)
        except OSError as exc:  # a read-only data directory still serves; shells search in-process
            log.warning("could not announce the server in %s: %s", engine.settings.data_dir, exc)

    threading.Thread(target=announce_when_listening, name="spyglass-announce", daemon=True).start()
    server.run()
