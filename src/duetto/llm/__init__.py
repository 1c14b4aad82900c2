"""Language models: one streaming protocol, a local llama.cpp backend and an OpenAI-compatible one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from duetto.config import LLMSettings


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str


class LLM(Protocol):
    """Streams the assistant's next reply to a conversation, piece by piece."""

    name: str

    def stream(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


_LOADED: dict[tuple, LLM] = {}


def load_llm(settings: LLMSettings | None = None) -> LLM:
    """The LLM for ``settings``: an OpenAI-compatible server when ``url`` is set, else llama.cpp."""
    settings = settings or LLMSettings()
    key = (settings.url, settings.model, settings.remote_model, settings.threads, settings.context)
    if key not in _LOADED:
        if settings.url:
            from duetto.llm.openai_compat import OpenAICompatLLM

            _LOADED[key] = OpenAICompatLLM(settings)
        else:
            from duetto.llm.llama_cpp import LlamaCppLLM

            _LOADED[key] = LlamaCppLLM(settings)
    return _LOADED[key]
