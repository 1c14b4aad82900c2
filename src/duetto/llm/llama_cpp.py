"""llama.cpp backend: the bundled Gemma 3 270M GGUF by default, or any GGUF file.

The bundled model is a *base* model, not instruction-tuned: it continues text. It is turned into
an assistant with a few-shot dialogue prompt (see :mod:`duetto.llm.prompt`) and stop sequences.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Iterator

from duetto.config import LLMSettings, auto_threads
from duetto.llm import Message
from duetto.llm.prompt import STOP, few_shot_prompt
from duetto.models import gguf_model


class LlamaCppLLM:
    def __init__(self, settings: LLMSettings):
        from llama_cpp import Llama

        self.settings = settings
        path = gguf_model(settings.model)
        started = time.perf_counter()
        route_llama_logs()
        self.llama = Llama(
            model_path=path,
            n_ctx=settings.context,
            n_threads=auto_threads(settings.threads, share=0.5),
            n_batch=256,
            seed=settings.seed,
            verbose=False,
        )
        self._lock = threading.Lock()  # one llama context: one generation at a time
        close_at_exit(self.llama, self._lock)
        self.load_seconds = time.perf_counter() - started
        self.name = path.rsplit("/", 1)[-1]
        self._warmed = ""

    def warm(self, messages: list[Message]) -> None:
        """Evaluate the prompt for ``messages`` now (system line, examples, the turns so far),
        so the next reply reuses the cache and pays only for its new words."""
        prefix = few_shot_prompt(messages)
        if prefix == self._warmed:
            return
        with self._lock:
            self.llama.create_completion(prefix, max_tokens=1, temperature=0.0)
        self._warmed = prefix

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        prompt = few_shot_prompt(messages)
        with self._lock:
            pieces = self.llama.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.9,
                repeat_penalty=1.1,
                stop=list(STOP),
                # The seed for every reply, not once per model: the same prompt gets the same
                # reply however many replies (or cancelled speculative starts) came before it.
                seed=self.settings.seed,
                stream=True,
            )
            try:
                for piece in pieces:
                    text = piece["choices"][0]["text"]
                    if text:
                        yield text
            finally:
                pieces.close()  # a cancelled reply stops generating at once


def close_at_exit(llama, lock: threading.Lock | None = None) -> None:
    """Free ``llama`` (a ``llama_cpp.Llama``) while the interpreter is still whole, after any
    call holding ``lock`` has finished: llama-cpp-python's own ``__del__`` at shutdown runs after
    its C bindings are gone and prints a TypeError traceback."""
    atexit.register(_close, weakref.ref(llama), lock or threading.Lock())


def _close(ref: weakref.ref, lock: threading.Lock) -> None:
    llama = ref()
    if llama is not None:
        # A warm-up or reply may still run in a daemon thread: let it finish first.
        held = lock.acquire(timeout=5)
        try:
            llama.close()
        finally:
            if held:
                lock.release()


# llama.cpp's log levels in the library llama-cpp-python builds (ggml.h): llama-cpp-python 0.3
# maps them one step off, so llama.cpp's warnings print on stderr as errors even with
# verbose=False ("llama_kv_cache_iswa: using full-size SWA cache" at every Gemma 3 load).
GGML_LOG_WARN, GGML_LOG_ERROR = 3, 4
_llama_log = logging.getLogger("duetto.llama_cpp")
_callback = None  # kept referenced: llama.cpp calls it from C


def route_llama_logs() -> None:
    """Send llama.cpp's own messages to the logger ``duetto.llama_cpp`` instead of stderr:
    errors as errors, warnings at debug level (they concern its memory layout, not the user)."""
    global _callback
    if _callback is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def forward(level: int, text: bytes, user_data) -> None:
        message = text.decode("utf-8", "replace").rstrip()
        if message and level == GGML_LOG_ERROR:
            _llama_log.error("%s", message)
        elif message and level == GGML_LOG_WARN:
            _llama_log.debug("%s", message)

    _callback = forward
    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
