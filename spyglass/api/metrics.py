"""Prometheus metrics: request latency per route, ingest rate, index size."""

from __future__ import annotations

import time

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

    def install(self, app: FastAPI) -> None:
        @app.middleware("http")
        async def timing(request: Request, call_next):
            started = time.perf_counter()
            response = await call_next(request)
            route = getattr(request.scope.get("route"), "path", "unmatched")
            self.latency.labels(request.method, route, str(response.status_code)).observe(
                time.perf_counter() - started
            )
            return response

    def record(self, report) -> None:
        self.ingested_items.inc(report.items)
        self.ingested_files.inc(report.added + report.updated + report.copied)
        self.ingest_errors.inc(len(report.errors))
