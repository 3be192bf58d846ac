"""Spyglass: self-hosted multimodal search and grounded answers over your own files."""

__version__ = "0.1.0"
