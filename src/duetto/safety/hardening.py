"""Pieces of server hardening that do not need the server: API-key checks and a decoder fuzzer.

- :func:`check_api_key` compares a presented key with every configured key in constant time
  (``hmac.compare_digest`` on SHA-256 digests, so neither the key's content nor its length leaks
  through timing, and every configured key is compared whichever matches).
- :func:`fuzz_decoder` feeds :func:`duetto.audio.load_audio` truncated and bit-flipped versions
  of real files and reports anything that is not clean audio or a clean
  :class:`~duetto.errors.AudioFormatError` (a crash, another exception type, a hang, NaN samples).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# A decode that takes longer than this on a mutated file of a few seconds is a hang.
DECODE_TIMEOUT_S = 10.0


def _digest(key: str | bytes) -> bytes:
    data = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return hashlib.sha256(data).digest()


def check_api_key(presented: str | bytes | None, valid_keys: Iterable[str | bytes]) -> bool:
    """True when ``presented`` equals one of ``valid_keys``; the time taken does not depend on
    which key matched, how many characters agree, or the keys' lengths."""
    if presented is None:
        presented = b""
    probe = _digest(presented)
    found = False
    for key in valid_keys:
        found |= hmac.compare_digest(probe, _digest(key))
    return found and bool(presented)


@dataclass(frozen=True)
class FuzzReport:
    """Outcome of :func:`fuzz_decoder`; ``failures`` lists what broke, with the mutation."""

    cases: int
    decoded: int  # mutated bytes that still decoded to finite audio
    rejected: int  # clean AudioFormatError (or EmptyAudioError)
    failures: list[str] = field(default_factory=list)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    seconds: float = 0.0


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), else the peak from getrusage."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


MUTATIONS = ("truncate", "flip", "flip+truncate")


def mutations(data: bytes, rng: np.random.Generator, n: int,
              kinds: tuple[str, ...] = MUTATIONS) -> Iterable[tuple[str, bytes]]:  # fmt: skip
    """``n`` mutated copies of ``data``, cycling through ``kinds`` (see :data:`MUTATIONS`)."""
    for i in range(n):
        kind = MUTATIONS.index(kinds[i % len(kinds)])
        if kind == 0:
            cut = int(rng.integers(0, len(data)))
            yield f"truncate@{cut}", data[:cut]
        else:
            buf = bytearray(data)
            flips = int(rng.integers(1, 64))
            # Headers hold most of the structure: aim half the flips at the first 512 bytes.
            for _ in range(flips):
                limit = min(len(buf), 512) if rng.random() < 0.5 else len(buf)
                pos = int(rng.integers(0, limit))
                buf[pos] ^= 1 << int(rng.integers(0, 8))
            label = f"flip{flips}"
            if kind == 2:
                cut = int(rng.integers(len(buf) // 2, len(buf)))
                buf = buf[:cut]
                label += f"+truncate@{cut}"
            yield label, bytes(buf)


def fuzz_decoder(files: Iterable[str | Path], cases_per_file: int = 100, seed: int = 0,
                 kinds: tuple[str, ...] = MUTATIONS) -> FuzzReport:  # fmt: skip
    """Mutate each file ``cases_per_file`` times and decode every mutation with load_audio."""
    from duetto.audio import load_audio
    from duetto.errors import AudioFormatError

    rng = np.random.default_rng(seed)
    files = [Path(f) for f in files]
    for path in files:  # warm-up: libraries loaded and buffers sized before RSS is measured
        load_audio(path)
    start, rss_before = time.perf_counter(), _rss_mb()
    cases = decoded = rejected = 0
    failures: list[str] = []
    for path in files:
        data = Path(path).read_bytes()
        for label, mutated in mutations(data, rng, cases_per_file, kinds):
            cases += 1
            t0 = time.perf_counter()
            try:
                audio = load_audio(io.BytesIO(mutated), name=f"{Path(path).name}:{label}")
            except AudioFormatError:
                rejected += 1
            except Exception as exc:  # noqa: BLE001 - anything else is exactly what we look for
                failures.append(f"{Path(path).name} {label}: {type(exc).__name__}: {exc}")
            else:
                if audio.dtype != np.float32 or not np.all(np.isfinite(audio)):
                    failures.append(f"{Path(path).name} {label}: non-finite or non-float32 samples")
                else:
                    decoded += 1
            if time.perf_counter() - t0 > DECODE_TIMEOUT_S:
                failures.append(f"{Path(path).name} {label}: took {time.perf_counter() - t0:.1f} s")
    return FuzzReport(
        cases, decoded, rejected, failures, rss_before, _rss_mb(), time.perf_counter() - start
    )
