"""Prometheus metrics: request latency per route, ingest rate, index size."""

from __future__ import annotations

import time
from collections.abc import Mapping

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "spyglass_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.ingested_items = Counter(
            "spyglass_ingested_items_total", "Items indexed", registry=self.registry
        )
        self.ingested_files = Counter(
            "spyglass_ingested_files_total", "Files indexed", registry=self.registry
        )
        self.ingest_errors = Counter(
            "spyglass_ingest_errors_total", "Files that could not be indexed", registry=self.registry
        )
        self.index_size = Gauge(
            "spyglass_index_vectors", "Vectors in the search index", registry=self.registry
        )

    def install(self, app: FastAPI, mounted: Mapping[int, str] | None = None) -> None:
        """Time every request by its route's template. ``mounted``: routes (by id) included under a
        prefix, whose own path lacks it; a ``{collection}`` stays a template, never a name."""
        mounted = mounted or {}

        @app.middleware("http")
        async def timing(request: Request, call_next):
            started = time.perf_counter()
            response = await call_next(request)
            found = request.scope.get("route")
            route = getattr(found, "path", "unmatched")
            if id(found) in mounted:
                named = "collection" in request.scope.get("path_params", {})
                route = ("/v1/collections/{collection}" if named else mounted[id(found)]) + route
            self.latency.labels(request.method, route, str(response.status_code)).observe(
                time.perf_counter() - started
            )
            return response

    def record(self, report) -> None:
        self.ingested_items.inc(report.items)
        self.ingested_files.inc(report.added + report.updated + report.copied)
        self.ingest_errors.inc(len(report.errors))
