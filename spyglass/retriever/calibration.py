"""The relevance floor: how well must a query match before results are worth showing?

Scores mean different things per model and per target modality (CLIP text-text
cosines run far higher than text-image ones), so no constant works. We measure it:
a fixed set of nonsense queries is searched against the collection. A real query
whose best dense score does not beat a high percentile of nonsense's best scores
has no good match in that modality; when it does, its hits are kept down to the
typical nonsense score (the noise level), so every real match is still listed.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

from spyglass.store import Store

if TYPE_CHECKING:
    from spyglass.encoders import Encoder
    from spyglass.encoders.query import QueryEncoder

FLOOR_PERCENTILE = 95.0
NOISE_PERCENTILE = 50.0
_SYLLABLES = (
    "bla",
    "vor",
    "quex",
    "zin",
    "drup",
    "mok",
    "fle",
    "tarn",
    "spiv",
    "glo",
    "wub",
    "kesh",
    "prat",
    "yol",
)


def nonsense_queries(count: int = 48, seed: int = 7) -> list[str]:
    """Pronounceable non-words: text the model has no meaning for."""
    rng = random.Random(seed)
    return [
        " ".join(
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
            for _ in range(rng.randint(1, 3))
        )
        for _ in range(count)
    ]


def relevance_floor(
    store: Store, encoder: Encoder | QueryEncoder, allow: np.ndarray | None
) -> tuple[float, float] | None:
    """(floor, noise): percentiles of nonsense queries' best scores among ``allow``; None without items."""
    if allow is not None and not len(allow):
        return None
    queries = encoder.encode_texts(nonsense_queries())
    best = [row[0].score for row in store.search(queries, 1, allow=allow) if row]
    if not best:
        return None
    return float(np.percentile(best, FLOOR_PERCENTILE)), float(np.percentile(best, NOISE_PERCENTILE))
