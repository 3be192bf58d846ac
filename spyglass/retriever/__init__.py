"""Retriever: cross-modal nearest neighbours, hybrid ranking, filters, relevance floor, evaluation."""

from spyglass.filters import Filters
from spyglass.retriever.query import Query, QueryError
from spyglass.retriever.results import SearchResponse, SearchResult
from spyglass.retriever.retriever import RankingOptions, Retriever

__all__ = ["Filters", "Query", "QueryError", "RankingOptions", "Retriever", "SearchResponse", "SearchResult"]
