"""A local vision-language model through transformers' ``AutoProcessor`` + ``AutoModelForImageTextToText``.

Works for families with a processor chat template (SmolVLM, Qwen2.5-VL, LLaVA,
Idefics3, Gemma 3 ...), from a hub id or a local directory, with the encoders'
offline rules: local caches first, one clear error when weights are missing offline.
"""

from __future__ import annotations

import base64
import functools
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from PIL import Image

from spyglass._compat import ensure_torchvision_importable
from spyglass.encoders import hub
from spyglass.generator.backends.base import Backend, Request

ensure_torchvision_importable()
from transformers import (  # noqa: E402
    AutoModelForImageTextToText,
    AutoProcessor,
    StopStringCriteria,
    TextIteratorStreamer,
)


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(
        self, source: str, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> None:
        local = Path(source).expanduser()
        if local.exists():
            source, local_only = str(local), True
        else:
            hub.hub_file(source, ["config.json"], f"transformers VLM {source}")
            local_only = hub.is_offline()
        try:
            self.processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
            self.model = AutoModelForImageTextToText.from_pretrained(
                source, local_files_only=local_only, dtype=dtype
            )
        except OSError:
            if local_only and not local.exists():
                raise hub.unavailable(f"transformers VLM {source}", str(hub.hf_cache_dir())) from None
            raise
        self.device = device or torch.device("cpu")
        self.model.to(self.device).eval()

    def _inputs(self, request: Request) -> dict:
        messages, images = to_template_messages(request.messages)
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=prompt, images=images or None, return_tensors="pt")
        return inputs.to(self.device)

    def _generate_kwargs(self, request: Request) -> dict:
        """The chat-completions controls as ``generate`` takes them: sampling when the temperature is
        above 0, ``num_return_sequences`` for ``n`` (as beams when greedy), ``stop_strings``."""
        params = request.params
        kwargs = {"max_new_tokens": params.max_tokens, "do_sample": params.temperature > 0}
        if params.temperature > 0:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        if params.n > 1:
            kwargs["num_return_sequences"] = params.n
            if params.temperature == 0:  # greedy search has one answer; beam search has n
                kwargs["num_beams"] = params.n
        if params.stop and _maps_stop_strings(self.processor.tokenizer, params.stop):
            kwargs["stop_strings"] = params.stop  # stops early; the generator cuts the answer at them
            kwargs["tokenizer"] = self.processor.tokenizer
        return kwargs

    def generate(self, request: Request) -> str:
        return self.candidates(request)[0]

    def candidates(self, request: Request) -> list[str]:
        inputs = self._inputs(request)
        with torch.inference_mode(), _seeded(request.params.seed):
            output = self.model.generate(**inputs, **self._generate_kwargs(request))
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]

    def stream(self, request: Request) -> Iterator[str]:
        inputs = self._inputs(request)
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)

        def run() -> None:
            with torch.inference_mode(), _seeded(request.params.seed):
                self.model.generate(**inputs, **self._generate_kwargs(request), streamer=streamer)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()


def _maps_stop_strings(tokenizer, stop: list[str]) -> bool:
    return _can_map(tokenizer, tuple(stop))


@functools.lru_cache(maxsize=64)
def _can_map(tokenizer, stop: tuple[str, ...]) -> bool:
    """Whether transformers can watch for ``stop`` with this tokenizer (a word-level one it cannot map:
    then the answer runs to ``max_tokens`` and is cut at the stop string after). It scans the whole
    vocabulary, so it is asked once per tokenizer and stop strings, not per answer."""
    try:
        StopStringCriteria(tokenizer, list(stop))
    except ValueError:
        return False
    return True


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Sampling from a generator seeded for this request (torch's global one, restored after)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def to_template_messages(messages: list[dict]) -> tuple[list[dict], list[Image.Image]]:
    """OpenAI-style parts -> processor chat-template parts; data-URL images become PIL images in order."""
    converted, images = [], []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            converted.append({"role": message["role"], "content": [{"type": "text", "text": content}]})
            continue
        parts = []
        for part in content:
            if part["type"] == "image_url":
                data = part["image_url"]["url"].split(",", 1)[1]
                images.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
                parts.append({"type": "image"})
            else:
                parts.append({"type": "text", "text": part["text"]})
        converted.append({"role": message["role"], "content": parts})
    return converted, images
