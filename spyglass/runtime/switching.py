"""Switching a collection's CLIP model without a pause in searching, and going back.

``use`` re-embeds every item from its file beside the current vectors (see ``reembed``), which
keep answering searches meanwhile, here and in other processes; the switch is recorded in one
transaction once the new vectors are complete, and the engine then adopts the new state.
``rollback`` returns to the previous model at once (its vectors were kept). The records
themselves are ``spyglass.versions``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from spyglass.errors import SpyglassError
from spyglass.runtime.collection import CollectionState
from spyglass.runtime.models import load_encoder

if TYPE_CHECKING:
    from spyglass.indexer.reembed import ReembedReport
    from spyglass.store import Store

Progress = Callable[[], None] | None


log = logging.getLogger(__name__)


def use(
    state: CollectionState, spec: str, active_spec: str, *, progress: bool, on_group: Progress
) -> tuple[ReembedReport, CollectionState | None]:
    """Re-embed into ``spec``'s space and record the switch; the new state, or None when ``spec``
    is the model searched with already (a pending switch to another is then called off)."""
    from spyglass.encoders.spec import parse_spec
    from spyglass.indexer.reembed import ReembedReport
    from spyglass.versions import Version

    spec = str(parse_spec(spec))  # local paths made absolute: the record must work from anywhere
    settings, current = state.settings, state.store.get()
    configured = settings.encoder.model
    target = load_encoder(settings, spec)
    records = current.model_versions()
    if target.model_id == current.model_id:
        with current.write() as tx:
            tx.set_model_versions({"switch": None})
        return ReembedReport(), None
    old = Version.of(records.get("active")) or Version.now(active_spec, current.model_id, configured)
    new = Version.now(spec, target.model_id, configured)
    switched = state.switched(state.models.switched(spec, target), state.open_store(target))
    store = switched.store.get()
    with store.write() as tx:
        tx.set_model_versions({"switch": new.record()})
    report = ReembedReport()
    while True:
        report.add(reembed(switched, progress, on_group))
        with store.write() as tx:  # checked and switched in one transaction: nothing slips between
            if not tx.stale_documents() - report.failed.keys():
                tx.set_model_versions({"active": new.record(), "previous": old.record(), "switch": None})
                break
        # files indexed with the old model since the last round: one more round
    return report, switched


def rollback(state: CollectionState) -> CollectionState:
    """Record the previous model as active again and return its state; items indexed since the
    switch still need ``reembed`` into it."""
    from spyglass.kinds import precision_of
    from spyglass.versions import Version

    records = state.store.get().model_versions()
    previous, active = Version.of(records.get("previous")), Version.of(records.get("active"))
    if previous is None or active is None:
        raise SpyglassError("there is no earlier model version to roll back to")
    target = load_encoder(state.settings, previous.spec, precision_of(previous.model_id))
    if target.model_id != previous.model_id:
        raise SpyglassError(
            f"{previous.spec} now loads other weights ({target.model_id}) than the version kept "
            f"({previous.model_id}); switch to them with `spyglass models use`"
        )
    switched = state.switched(state.models.switched(previous.spec, target), state.open_store(target))
    back = Version.now(previous.spec, previous.model_id, state.settings.encoder.model)
    with switched.store.get().write() as tx:
        tx.set_model_versions({"active": back.record(), "previous": active.record(), "switch": None})
    return switched


def followed(state: CollectionState, configured: str) -> CollectionState | None:
    """The state for the model another process switched the collection to (or rolled back to), when
    the configuration does not name another; None when nothing changed."""
    from spyglass.versions import Version

    store = state.store.get()
    active = Version.of(store.model_versions().get("active"))
    if active is None or active.model_id == store.model_id or configured != active.spec:
        return None
    log.info("the collection switched to %s; searching with it from now on", active.spec)
    return state.switched(state.models.switched(active.spec))


def prune(store: Store) -> dict[str, int]:
    """Drop the vectors of every CLIP model but the active one (and one being switched to);
    returns the vectors dropped per model. Rolling back is impossible afterwards."""
    from spyglass.kinds import space_of

    records = store.model_versions()
    keep = {store.model_id} | {r["model_id"] for r in (records.get("switch"),) if r}
    dropped = {
        model_id: store.prune(model_id)
        for model_id in store.status()["vectors_by_model"]
        if space_of(model_id) == "clip" and model_id not in keep
    }
    with store.write() as tx:
        tx.set_model_versions({"previous": None})
    return dropped


def reembed(state: CollectionState, progress: bool, on_group: Progress) -> ReembedReport:
    """Embed every item not yet in ``state``'s space from its file."""
    from spyglass.indexer.loaders import LoadOptions
    from spyglass.indexer.reembed import reembed as run

    options = LoadOptions.from_settings(state.settings.ingest)
    return run(state.store.get(), state.models.encoder.get(), options, progress=progress, on_group=on_group)
