"""Any OpenAI-compatible chat server (llama.cpp server, vLLM, Ollama, OpenAI...), streamed over SSE."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx

from duetto.config import LLMSettings
from duetto.errors import LLMConnectionError
from duetto.llm import Message


class OpenAICompatLLM:
    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.base = settings.url.rstrip("/")
        self.name = settings.remote_model
        key = os.environ.get(settings.api_key_env, "")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=httpx.Timeout(settings.timeout_s, connect=5.0))

    def count_tokens(self, text: str) -> int:
        # Servers do not share their tokenizer; ~4 characters per token is the usual estimate.
        return max(1, len(text) // 4)

    def check(self) -> None:
        """Fail early with a clear message when the server cannot be reached."""
        try:
            self.client.get(f"{self.base}/models", headers=self.headers).raise_for_status()
        except httpx.HTTPError as exc:
            raise LLMConnectionError(
                f"LLM server at {self.base} is unreachable ({type(exc).__name__})",
                "start it, or check --llm-url",
            ) from None

    def warm(self, messages: list[Message]) -> None:
        """One-token request for ``messages``, so a server that caches prompts (llama.cpp, vLLM)
        holds the conversation so far and the next reply evaluates only its new words."""
        body = self._body(messages, max_tokens=1, temperature=0.0)
        self.client.post(f"{self.base}/chat/completions", json=body, headers=self.headers)

    def _body(self, messages: list[Message], *, max_tokens: int, temperature: float) -> dict:
        """The chat request; the warm-up and the reply must send the same prompt for the server's
        cache to match."""
        return {
            "model": self.settings.remote_model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }

    def stream(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        body = self._body(messages, max_tokens=max_tokens, temperature=temperature)
        body["stream"] = True
        try:
            with self.client.stream(
                "POST", f"{self.base}/chat/completions", json=body, headers=self.headers
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise LLMConnectionError(
                        f"LLM server answered {response.status_code}: {response.text[:200]}"
                    )
                for line in response.iter_lines():
                    piece = _sse_delta(line)
                    if piece is None:
                        return
                    if piece:
                        yield piece
            # A complete stream ends with [DONE]; a closed connection before it is a dead server.
            raise LLMConnectionError(
                f"LLM server at {self.base} stopped mid-reply", "check the server"
            )
        except httpx.HTTPError as exc:
            raise LLMConnectionError(
                f"LLM server at {self.base} failed mid-reply ({type(exc).__name__})",
                "check the server",
            ) from None


def _sse_delta(line: str) -> str | None:
    """Text of one server-sent event line; None at the end of the stream."""
    if not line.startswith("data:"):
        return ""
    payload = line[5:].strip()
    if payload == "[DONE]":
        return None
    try:
        choice = json.loads(payload)["choices"][0]
    except (ValueError, KeyError, IndexError):
        return ""
    return (choice.get("delta") or {}).get("content") or ""
