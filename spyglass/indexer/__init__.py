"""Indexer: walk sources, load files of every kind, embed, and record them in the store.

``Indexer`` (and with it torch) loads on first use, so the light parts of this package
(``stages``, ``sniff``) can be imported by status and upload checks at no cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spyglass.indexer.indexer import Indexer, IndexReport

__all__ = ["IndexReport", "Indexer"]


def __getattr__(name: str):
    if name in __all__:
        from spyglass.indexer import indexer

        return getattr(indexer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
