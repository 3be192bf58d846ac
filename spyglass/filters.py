"""Metadata filters: what a search may return, independent of how the store applies them.

The store compiles a ``Filters`` into one query yielding the allowed item ids, which
become the vector search's allow-list, so a selective filter (1 match in 10,000)
still finds its match instead of being applied to a short top-k afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC

from spyglass.kinds import KIND_ALIASES, MODALITIES


@dataclass(frozen=True)
class Filters:
    """Every field narrows the result; an empty ``Filters`` allows everything."""

    modality: str | None = None  # "image" or "text"
    kinds: tuple[str, ...] = ()  # image, page, figure, chunk, keyframe (or photo)
    path_prefix: str | None = None  # a folder (or source) prefix
    types: tuple[str, ...] = ()  # file extensions ("jpg", ".pdf") or MIME prefixes ("image/")
    date_from: float | None = None  # epoch seconds; EXIF capture time, else file mtime
    date_to: float | None = None
    tags: tuple[str, ...] = ()  # all of these
    metadata: tuple[tuple[str, str], ...] = field(default=())  # key == value pairs

    @property
    def empty(self) -> bool:
        return self == Filters()

    def item_kinds(self) -> tuple[str, ...]:
        wanted = {str(KIND_ALIASES.get(k, k)) for k in self.kinds}
        if self.modality is not None:
            if self.modality not in MODALITIES:
                raise ValueError(f"modality must be 'image' or 'text', not {self.modality!r}")
            allowed = {str(kind) for kind in MODALITIES[self.modality]}
            wanted = wanted & allowed if wanted else allowed
        return tuple(sorted(wanted))


def parse_filter_args(values: Sequence[str]) -> Filters:
    """CLI form: ``kind=photo``, ``type=pdf``, ``path=/photos``, ``tag=trip``, ``after=2023-01-01``, ``key=value``."""
    from datetime import datetime

    fields: dict = {"kinds": [], "types": [], "tags": [], "metadata": []}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep:
            raise ValueError(f"filter {value!r} is not key=value")
        if key == "kind":
            fields["kinds"].append(raw)
        elif key == "type":
            fields["types"].append(raw)
        elif key == "tag":
            fields["tags"].append(raw)
        elif key in ("path", "folder"):
            fields["path_prefix"] = raw
        elif key == "modality":
            fields["modality"] = raw
        elif key in ("after", "before"):
            stamp = datetime.fromisoformat(raw).replace(tzinfo=UTC).timestamp()
            fields["date_from" if key == "after" else "date_to"] = stamp
        else:
            fields["metadata"].append((key, raw))
    return Filters(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
