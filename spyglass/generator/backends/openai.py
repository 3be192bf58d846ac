"""Any OpenAI-compatible chat-completions server with image input.

OpenAI, Gemini's compatible endpoint, vLLM, Ollama, llama.cpp server, LM Studio.
Images go as base64 data URLs. The API key comes from the environment and is never
logged. 429 and 5xx answers (and connection failures) are retried with exponential
backoff, honouring ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import httpx

from spyglass.errors import SpyglassError
from spyglass.generator.backends.base import Backend, Request

log = logging.getLogger(__name__)
RETRY_STATUS = {429, 500, 502, 503, 504}


class GenerationError(SpyglassError):
    """The model server failed or refused, after retries."""


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.retries, self.backoff = retries, backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend({self.url!r}, model={self.model!r})"

    def _body(self, request: Request, stream: bool) -> dict:
        params = request.params
        body = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": stream,
        }
        if params.n > 1:  # sent only when asked: some servers refuse the field
            body["n"] = params.n
        if params.stop:
            body["stop"] = params.stop
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def generate(self, request: Request) -> str:
        return self.candidates(request)[0]

    def candidates(self, request: Request) -> list[str]:
        response = self._send(self._body(request, stream=False))
        try:
            choices = sorted(response.json()["choices"], key=lambda choice: choice.get("index", 0))
            return [choice["message"]["content"] or "" for choice in choices] or [""]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise GenerationError(f"unexpected reply from {self.url}: {exc}") from None

    def stream(self, request: Request) -> Iterator[str]:
        body = self._body(request, stream=True)
        for attempt in range(self.retries + 1):
            try:
                with self.client.stream("POST", self.url, json=body) as response:
                    if response.status_code in RETRY_STATUS and attempt < self.retries:
                        self._wait(attempt, response)
                        continue
                    self._raise_for(response)
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            return
                        delta = json.loads(data)["choices"][0].get("delta", {}).get("content")
                        if delta:
                            yield delta
                    return
            except (httpx.ConnectError, httpx.ReadTimeout, httpx.ConnectTimeout) as exc:
                if attempt >= self.retries:
                    raise GenerationError(f"cannot reach {self.url}: {exc}") from None
                self._wait(attempt)

    def _send(self, body: dict) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                response = self.client.post(self.url, json=body)
            except (httpx.ConnectError, httpx.ReadTimeout, httpx.ConnectTimeout) as exc:
                if attempt >= self.retries:
                    raise GenerationError(f"cannot reach {self.url}: {exc}") from None
                self._wait(attempt)
                continue
            if response.status_code in RETRY_STATUS and attempt < self.retries:
                self._wait(attempt, response)
                continue
            self._raise_for(response)
            return response
        raise GenerationError(f"{self.url} kept failing")  # pragma: no cover - loop always returns or raises

    def _wait(self, attempt: int, response: httpx.Response | None = None) -> None:
        delay = self.backoff * 2**attempt
        if response is not None:
            retry_after = response.headers.get("retry-after")
            if retry_after and retry_after.replace(".", "", 1).isdigit():
                delay = float(retry_after)
        log.info("model server busy or failing (attempt %d); retrying in %.1f s", attempt + 1, delay)
        time.sleep(delay)

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            response.read()
            detail = response.text[:300]
            raise GenerationError(f"model server answered {response.status_code}: {detail}")
