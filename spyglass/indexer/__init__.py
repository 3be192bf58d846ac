"""Indexer: walk sources, load files of every kind, embed, and record them in the store."""

from spyglass.indexer.indexer import Indexer, IndexReport

__all__ = ["IndexReport", "Indexer"]
