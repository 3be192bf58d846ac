"""A toy item stage for the stage tests: counts the words of text chunks, and how often it ran."""

from __future__ import annotations

import os
import time
from typing import ClassVar

from spyglass.indexer.stages import ItemStage, register_stage
from spyglass.kinds import ItemKind


@register_stage
class WordCount(ItemStage):
    name = "words"
    version = 1
    kinds = (ItemKind.CHUNK,)
    batch_size = 2
    calls: ClassVar[list[int]] = []  # item ids seen, in this process

    def run(self, items: list[dict]) -> dict[int, dict]:
        delay = float(os.environ.get("TOY_STAGE_DELAY", "0"))
        out = {}
        for item in items:
            time.sleep(delay)
            self.calls.append(item["id"])
            out[item["id"]] = {"words": len((item["text"] or "").split())}
        return out
