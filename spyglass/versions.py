"""Model versions: which CLIP model a data directory searches with, and how it changes.

The catalog records up to three versions (``Store.model_versions``), each as its spec and
``model_id``: ``active`` (what searches use), ``previous`` (what ``rollback`` returns to; its
vectors stay until pruned) and ``switch`` (a model being re-embedded, not yet searched).

Which model is active: the one recorded by ``spyglass models use``, unless the configuration
named another model since (the newest decision wins): the record keeps the spec that was
configured when it was made, and a different configured spec (``--model``, ``SPYGLASS_MODEL``,
the config file) overrides it. A data directory without a record uses the configured model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Version:
    spec: str
    model_id: str
    configured: str  # the configured spec when this was recorded (see the module docstring)
    since: float

    def record(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, record: Mapping | None) -> Version | None:
        if not record:
            return None
        return cls(record["spec"], record["model_id"], record.get("configured", ""), record.get("since", 0.0))

    @classmethod
    def now(cls, spec: str, model_id: str, configured: str) -> Version:
        return cls(spec, model_id, configured, time.time())


def active_spec(records: Mapping[str, Mapping], configured: str) -> str:
    """The spec searches use: the recorded active version's, unless the configuration changed since."""
    active = Version.of(records.get("active"))
    return active.spec if active is not None and active.configured == configured else configured


def describe(records: Mapping[str, Mapping], configured: str, progress: tuple[int, int] | None) -> dict:
    """What ``spyglass models`` and ``/v1/stats`` show about versions; ``progress`` is the switch's
    (items with a CLIP vector, those the new model has embedded)."""
    active = Version.of(records.get("active"))
    overridden = active is not None and active.configured != configured
    info: dict = {
        "active": active.record() if active and not overridden else None,
        "configured": configured,
        "previous": records.get("previous"),
        "switch": None,
    }
    if overridden:
        info["note"] = (
            f"the configuration names {configured} since `models use` chose {active.spec}; the configuration wins"
        )
    switch = records.get("switch")
    if switch and progress is not None:
        total, done = progress
        info["switch"] = {**switch, "items": total, "embedded": min(done, total)}
    return info
