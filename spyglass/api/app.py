"""The FastAPI application: versioned routers, one error shape, auth, CORS, metrics, the web page, MCP.

Every collection route is mounted twice (``api.hosting``): under ``/v1`` for the default collection,
and under ``/v1/collections/{collection}`` for a named one.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response

from spyglass import __version__, discovery
from spyglass.api import errors
from spyglass.api.body_limit import BodyLimit
from spyglass.api.errors import documented
from spyglass.api.hosting import Hosted, collection_path
from spyglass.api.mcp import KeyGuard, build_server, request_grant
from spyglass.api.metrics import Metrics
from spyglass.api.routers import ask, collections, documents, items, models, search, system
from spyglass.engine import Engine
from spyglass.runtime.collections import Collections

log = logging.getLogger(__name__)


def create_app(engine: Engine, *, announcement: discovery.Server | None = None) -> FastAPI:
    """An app around ``engine`` (the default collection) and the named collections beside it, shared
    by every request: it opens their catalogs and the query encoder at start-up (the exported text
    tower when there is one; the full model when first needed).

    ``announcement``: how ``serve`` announces this app to shells (its token is a read key for the
    default collection here).
    """
    settings = engine.settings
    metrics = Metrics()
    hosted = Hosted(Collections(settings, default=engine), on_report=metrics.record)
    agents = build_server(hosted.collections, grants=request_grant)
    agents_app = agents.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True, host=settings.api.host
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(lambda: engine.store)  # loads the query encoder, opens the catalog and index
        await run_in_threadpool(hosted.open_all)  # their accepted jobs resume, their stages catch up
        async with agents.session_manager.run():
            yield
        if announcement:
            discovery.withdraw(settings.data_dir, announcement)
        hosted.close()

    app = FastAPI(
        title="Spyglass",
        version=__version__,
        lifespan=lifespan,
        description="Multimodal search and grounded answers over your own files.",
    )
    app.state.hosted = hosted
    app.state.metrics = metrics
    errors.install(app)
    scoped = (search.router, ask.router, documents.router, items.router, models.router, system.collection)
    metrics.install(app, {id(route): "/v1" for router in scoped for route in router.routes})
    # Refused from its Content-Length, or cut off as it streams: a form body is otherwise spooled
    # to disk whole before any handler could check it.
    app.add_middleware(BodyLimit, limit=int(settings.api.max_request_mb * 2**20))
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.include_router(system.router)
    app.include_router(collections.router)
    for router in scoped:  # 503: a named collection's own model may be missing here
        app.include_router(router, prefix="/v1", responses=documented(404, 503))
        app.include_router(
            router,
            prefix="/v1/collections/{collection}",
            dependencies=[Depends(collection_path)],
            responses=documented(404, 503),
        )
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
