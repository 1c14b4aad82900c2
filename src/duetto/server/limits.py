"""Per-client rate limits: a token bucket for each API key (or client address without a key)."""

from __future__ import annotations

import hashlib
import math
import threading
import time

from duetto.server.errors import RateLimitError

# Buckets kept at most; beyond this the full ones (clients idle for a minute) are forgotten, so a
# flood of addresses cannot grow the table without bound.
MAX_CLIENTS = 10_000


class RateLimiter:
    """``per_minute`` requests a minute per client, a minute's worth allowed in one burst."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute = per_minute
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last update)
        self.lock = threading.Lock()

    def take(self, client: str) -> None:
        """Spend one request of ``client``'s budget; :class:`RateLimitError` when none is left."""
        if self.per_minute <= 0:
            return
        with self.lock:
            now = self.clock()
            tokens, last = self.buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill_per_s)
            if tokens < 1.0:
                self.buckets[client] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / self.refill_per_s)
                raise RateLimitError(
                    f"rate limit of {self.per_minute} requests per minute reached",
                    f"retry after {wait} s",
                    retry_after=wait,
                )
            self.buckets[client] = (tokens - 1.0, now)
            if len(self.buckets) > MAX_CLIENTS:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        full_after = self.capacity / self.refill_per_s
        for client, (_, last) in list(self.buckets.items()):
            if now - last >= full_after:
                del self.buckets[client]


def client_id(key: str | None, key_valid: bool, keys_required, client) -> str:
    """Whose budget a request spends: its API key when keys are required and it is valid (never
    kept in clear), else its address (so guessing keys from one address is limited too, and
    without keys a made-up key does not buy a fresh budget). ``client`` is ASGI's (host, port)."""
    if keys_required and key and key_valid:
        return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    host = client[0] if client else None
    return f"addr:{host or 'unknown'}"
