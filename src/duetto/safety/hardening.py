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


# ----------------------------------------------------------------------------- server fuzzing
@dataclass
class ServerFuzzReport:
    """Outcome of :func:`fuzz_http` or :func:`fuzz_realtime` against a running server."""

    cases: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # "404" -> count, or event kinds
    server_errors: list[str] = field(default_factory=list)  # 5xx, crashes, dropped sessions
    check_failures: list[str] = field(default_factory=list)  # schema and other conformance
    seconds: float = 0.0

    def count(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1


# Cheap versions of generated requests: the fuzzer is after the server's handling of odd input,
# not after minutes of speech synthesis or LLM output per case.
FUZZ_MAX_TEXT = 200
FUZZ_MAX_TOKENS = 8


def _cheapen(case):
    body = case.body
    if isinstance(body, dict):
        if isinstance(body.get("input"), str):
            body["input"] = body["input"][:FUZZ_MAX_TEXT]
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(body.get(key), int) and not isinstance(body[key], bool):
                body[key] = min(body[key], FUZZ_MAX_TOKENS)
        if isinstance(body.get("messages"), list) and "max_tokens" not in body:
            body["max_tokens"] = FUZZ_MAX_TOKENS
    return case


def fuzz_http(
    base_url: str, examples: int = 20, seed: int = 0, headers: dict | None = None
) -> ServerFuzzReport:
    """Every operation of the server's OpenAPI schema, ``examples`` positive and ``examples``
    negative cases each (schemathesis + hypothesis). A 5xx or a dropped connection is a server
    error; a response that contradicts the schema is a check failure."""
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )
    from schemathesis.core.failures import FailureGroup

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    report = ServerFuzzReport()
    started = time.perf_counter()
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    session = requests.Session()

    def fuzz(operation, mode) -> None:
        label = f"{operation.method.upper()} {operation.path}"
        strategy = operation.as_strategy(generation_mode=mode).map(_cheapen)

        @fixed_seed(seed)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case):
            report.cases += 1
            try:
                response = case.call(
                    base_url=base_url, session=session, headers=headers, timeout=120
                )
            except requests.RequestException as exc:
                report.server_errors.append(f"{label}: no response ({type(exc).__name__})")
                return
            report.count(str(response.status_code))
            if response.status_code >= 500:
                report.server_errors.append(
                    f"{label}: {response.status_code} {response.text[:200]}"
                )
                return
            try:
                case.validate_response(response, checks=checks)
            except FailureGroup as exc:
                report.check_failures.append(f"{label}: {str(exc).strip()[:300]}")

        try:
            run()
        except Unsatisfiable:
            pass  # nothing to make invalid (an operation without parameters)

    for result in schema.get_all_operations():
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            fuzz(result.ok(), mode)
    report.seconds = time.perf_counter() - started
    return report


def realtime_fuzz_events(rng: np.random.Generator, n: int, max_event_bytes: int) -> list:
    """``n`` malformed realtime client messages: str (a text frame) or bytes (a binary frame)."""
    import base64
    import json

    def garbage(size: int) -> bytes:
        return rng.integers(0, 256, size, dtype=np.uint8).tobytes()

    def word() -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyz._-/\\\u00e9\u4e2d\U0001f600 "
        return "".join(rng.choice(list(alphabet), int(rng.integers(0, 24))))

    wrong_values = [None, True, 0, -1, 1e308, "x", "", [], {}, [1, 2], {"a": None}, "NaN"]
    known = [
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "response.create",
        "response.cancel",
    ]
    session_fields = [
        "voice", "agent", "instructions", "temperature", "speed", "turn_detection", "modalities",
        "max_response_output_tokens", "input_audio_format", "output_audio_format",
    ]  # fmt: skip
    makers = [
        lambda: garbage(int(rng.integers(0, 4096))),  # binary frame
        lambda: garbage(int(rng.integers(1, 512))).decode("latin-1"),  # text that is not JSON
        lambda: json.dumps({"type": "session.update", "session": {"voice": "alloy"}})[
            : int(rng.integers(1, 40))
        ],  # truncated JSON
        lambda: json.dumps(wrong_values[int(rng.integers(len(wrong_values)))]),  # not an object
        lambda: json.dumps({"type": word()}),  # unknown type
        lambda: json.dumps({"type": wrong_values[int(rng.integers(len(wrong_values)))]}),
        lambda: json.dumps(
            {
                "type": "input_audio_buffer.append",
                "audio": wrong_values[int(rng.integers(len(wrong_values)))],
            }
        ),
        lambda: json.dumps(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(garbage(3)).decode()}
        ),  # odd number of PCM bytes
        lambda: json.dumps({"type": "input_audio_buffer.append", "audio": word() + "!!"}),
        lambda: json.dumps(
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(b"RIFF" + garbage(64)).decode(),
            }
        ),  # a WAV file instead of PCM
        lambda: json.dumps(
            {
                "type": "session.update",
                "session": {
                    session_fields[int(rng.integers(len(session_fields)))]: wrong_values[
                        int(rng.integers(len(wrong_values)))
                    ]
                },
            }
        ),
        lambda: json.dumps({"type": "session.update", "session": {"voice": "/etc/passwd"}}),
        lambda: json.dumps(
            {
                "type": "session.update",
                "session": wrong_values[int(rng.integers(len(wrong_values)))],
            }
        ),
        lambda: json.dumps(
            {"type": known[int(rng.integers(len(known)))], "event_id": {"nested": [word()]}}
        ),
        lambda: "[" * int(rng.integers(1000, 100_000)),  # deep nesting
        lambda: json.dumps(
            {
                "type": "input_audio_buffer.append",
                "audio": "A" * (max_event_bytes + int(rng.integers(4, 4096)) // 4 * 4),
            }
        ),  # an event above the size limit
    ]
    return [makers[i % len(makers)]() for i in range(n)]


async def _realtime_probe(ws, timeout: float) -> list[str]:
    """The server events that came before the answer to a probe (a clear gets 'cleared'): the
    session still answers. Raises TimeoutError or ConnectionClosed when it does not."""
    import asyncio
    import json

    await ws.send(json.dumps({"type": "input_audio_buffer.clear", "event_id": "probe"}))

    async def wait():
        seen = []
        while True:
            event = json.loads(await ws.recv())
            if event.get("type") == "input_audio_buffer.cleared":
                return seen
            seen.append(event.get("type"))

    return await asyncio.wait_for(wait(), timeout)


async def fuzz_realtime(
    ws_url: str,
    cases: int = 200,
    seed: int = 0,
    max_event_bytes: int = 4 * 1024 * 1024,
    per_session: int = 25,
    headers: dict | None = None,
) -> ServerFuzzReport:
    """Malformed frames and events on the realtime WebSocket (see :func:`realtime_fuzz_events`),
    ``per_session`` per connection, each followed by a probe that the session still answers; then
    abrupt disconnects mid-audio. A session that drops or stops answering is a server error."""
    import asyncio
    import base64
    import json

    import websockets

    rng = np.random.default_rng(seed)
    report = ServerFuzzReport()
    started = time.perf_counter()
    events = realtime_fuzz_events(rng, cases, max_event_bytes)
    connect = dict(max_size=None, open_timeout=30, additional_headers=headers or {})
    for first in range(0, len(events), per_session):
        async with websockets.connect(ws_url, **connect) as ws:
            for message in events[first : first + per_session]:
                report.cases += 1
                what = "binary" if isinstance(message, bytes) else message[:60]
                try:
                    await ws.send(message)
                    seen = await _realtime_probe(ws, 30)
                except Exception as exc:  # noqa: BLE001 - a dropped session is the finding
                    report.server_errors.append(f"session lost after {what!r}: {exc!r}"[:300])
                    break
                report.count("error event" if "error" in seen else "no error event")
    # Audio cut off mid-stream: the client vanishes without a close frame.
    silence = base64.b64encode(bytes(960)).decode()
    for _ in range(3):
        report.cases += 1
        ws = await websockets.connect(ws_url, **connect)
        for _ in range(10):
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": silence}))
        ws.transport.abort()
        await asyncio.sleep(0.1)
        report.count("aborted")
    report.seconds = time.perf_counter() - started
    return report
