"""Prometheus metrics: requests, errors, live sessions and per-stage latency histograms.

Each app gets its own registry, so several apps in one process (tests, embedding) never clash.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from duetto.frames import TurnMetrics

# Voice latencies live between ~20 ms (a TTS chunk) and a few seconds (a slow LLM on a busy CPU).
LATENCY_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

# TurnMetrics fields reported as stages, and the stage label each gets.
TURN_STAGES = {
    "endpoint_ms": "endpoint",
    "asr_ms": "asr",
    "llm_first_token_ms": "llm_first_token",
    "first_clause_ms": "llm_first_clause",
    "tts_first_audio_ms": "tts_first_audio",
    "voice_to_voice_ms": "voice_to_voice",
}


class Metrics:
    """The server's counters, gauges and histograms in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "duetto_http_requests",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "duetto_errors",
            "Errors returned to clients (HTTP responses >= 400 and realtime error events)",
            ["route", "code"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "duetto_http_request_duration_seconds",
            "Time to the response's headers",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.active_sessions = Gauge(
            "duetto_realtime_active_sessions",
            "Realtime voice sessions open now",
            registry=self.registry,
        )
        self.sessions = Counter(
            "duetto_realtime_sessions", "Realtime voice sessions opened", registry=self.registry
        )
        self.slow_clients = Counter(
            "duetto_realtime_slow_client_disconnects",
            "Realtime sessions closed because the client stopped reading",
            registry=self.registry,
        )
        self.turns = Counter(
            "duetto_turns",
            "Voice turns answered, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "duetto_stage_latency_seconds",
            "Latency of each pipeline stage (realtime turns and HTTP endpoints)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_stage(self, stage: str, seconds: float | None) -> None:
        if seconds is not None:
            self.stage_seconds.labels(stage).observe(seconds)

    def observe_turn(self, m: TurnMetrics) -> None:
        self.turns.labels("interrupted" if m.interrupted else "completed").inc()
        for name, stage in TURN_STAGES.items():
            value = getattr(m, name)
            if value is not None:
                self.stage_seconds.labels(stage).observe(value / 1000)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
