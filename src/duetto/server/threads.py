"""Run a blocking generator (LLM tokens, TTS chunks, ASR pieces) in a thread, read it async.

The thread stops as soon as the reader goes away (a client disconnects mid-stream), and it runs
at most :data:`AHEAD` items ahead of the reader, so a slow client never makes it buffer more.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

from duetto.server.errors import StageTimeoutError

T = TypeVar("T")

# Items produced ahead of the reader: enough to hide scheduling jitter, small enough to stay bounded.
AHEAD = 4
# How often a producer waiting for the reader checks whether it should stop.
POLL_S = 0.1


async def iterate_in_thread(
    make: Callable[[], Iterator[T]], timeout: float | None = None, stage: str = "the stage"
) -> AsyncIterator[T]:
    """Yield what ``make()`` yields; ``make`` and the iteration run in a worker thread.

    When the next item takes longer than ``timeout`` seconds, :class:`StageTimeoutError` (504)
    naming ``stage`` is raised and the thread is told to stop at its next item.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    room = threading.Semaphore(AHEAD)
    stop = threading.Event()

    def put(kind: str, value: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (server shutting down)
            stop.set()

    def produce() -> None:
        try:
            items = make()
            try:
                for item in items:
                    while not room.acquire(timeout=POLL_S):
                        if stop.is_set():
                            return
                    if stop.is_set():
                        return
                    put("item", item)
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()  # e.g. llama.cpp stops generating and releases its lock
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, raised there
            put("error", exc)
        else:
            put("end", None)

    thread = threading.Thread(target=produce, daemon=True, name="duetto-stream")
    thread.start()
    try:
        while True:
            try:
                kind, value = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                raise StageTimeoutError(
                    f"{stage} had nothing to show for {timeout:g} s",
                    "try a shorter input, or raise the server's stage timeouts",
                ) from None
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            room.release()
            yield value  # type: ignore[misc]
    finally:
        stop.set()
