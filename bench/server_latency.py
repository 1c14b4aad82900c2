"""How fast ``duetto serve`` starts, and the voice-to-voice latency of realtime sessions over it.

Starts ``duetto serve`` on a free port (or uses ``--url``), times it until /healthz answers, then
speaks questions made by our TTS into /v1/realtime at real-time pace, as a microphone would, and
times each turn two ways:

* client: from the end of the question's last voiced packet *leaving the client* to the first
  reply audio *arriving* (what a user hears, minus playback buffering);
* server: ``response.done.duetto.latency_ms.voice_to_voice`` (last voiced sample received to
  first reply audio ready), with its stages.

    python bench/server_latency.py [--turns 3] [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import numpy as np

QUESTIONS = (
    "What is the capital of Spain?",
    "How many days are there in a week?",
    "Can you give me a tip for sleeping better?",
    "Why is the sky blue?",
    "What is the capital of Italy?",
)
WIRE_RATE = 24_000
PACKET_S = 0.02  # 20 ms packets, like WebRTC
LEAD_S = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> tuple[subprocess.Popen, float, dict]:
    import httpx

    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "duetto.cli", "serve", "--port", str(port), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    facts = json.loads(proc.stdout.readline() or "{}")
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, time.perf_counter() - started, facts
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("duetto serve exited before it was ready")
        time.sleep(0.05)


def spoken(text: str) -> np.ndarray:
    from duetto.audio import resample
    from duetto.tts import load_tts, synthesize

    tts = load_tts()
    return resample(synthesize(tts, text), tts.sample_rate, WIRE_RATE)


async def one_turn(ws_url: str, question: str) -> dict:
    import websockets

    from duetto.audio import to_pcm16

    speech = spoken(question)
    audio = np.concatenate([np.zeros(int(LEAD_S * WIRE_RATE), np.float32), speech])
    step = int(PACKET_S * WIRE_RATE)
    packets = [to_pcm16(audio[i : i + step]) for i in range(0, len(audio), step)]
    silence = to_pcm16(np.zeros(step, np.float32))
    last_voiced_sent: list[float] = []

    async with websockets.connect(ws_url, max_size=None) as ws:

        async def feed():
            t0 = time.perf_counter()
            n = 0
            while True:
                data = packets[n] if n < len(packets) else silence
                await ws.send(
                    json.dumps(
                        {
                            "type": "input_audio_buffer.append",
                            "audio": base64.b64encode(data).decode(),
                        }
                    )
                )
                n += 1
                if n == len(packets):
                    last_voiced_sent.append(time.perf_counter())
                await asyncio.sleep(max(0.0, t0 + n * PACKET_S - time.perf_counter()))

        feeder = asyncio.ensure_future(feed())
        first_audio = None
        transcript = ""
        try:
            async for message in ws:
                event = json.loads(message)
                kind = event["type"]
                if kind == "conversation.item.input_audio_transcription.completed":
                    transcript = event["transcript"]
                elif kind == "response.audio.delta" and first_audio is None:
                    first_audio = time.perf_counter()
                elif kind == "response.done":
                    d = event["response"]["duetto"]
                    break
        finally:
            feeder.cancel()
    client_ms = (
        (first_audio - last_voiced_sent[0]) * 1000 if first_audio and last_voiced_sent else None
    )
    return {
        "question": question,
        "heard": transcript,
        "reply": d["agent_text"],
        "client_ms": client_ms,
        **d["latency_ms"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an already running server (default: start duetto serve)")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    proc = None
    startup = {}
    if args.url:
        base = args.url.rstrip("/")
    else:
        port = free_port()
        proc, seconds, facts = start_server(port)
        base = f"http://127.0.0.1:{port}"
        startup = {"ready_s": round(seconds, 2), "models_s": facts.get("load_seconds")}
    ws_url = base.replace("http", "ws", 1) + "/v1/realtime"
    try:
        turns = [
            asyncio.run(one_turn(ws_url, QUESTIONS[i % len(QUESTIONS)])) for i in range(args.turns)
        ]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"startup": startup, "turns": turns, "load_average_1m": load}, indent=2))
        return 0
    if startup:
        print(
            f"duetto serve ready (/healthz 200) after {startup['ready_s']:.2f} s; model loads {startup['models_s']}"
        )
    header = f"{'question':44} {'client v2v':>10} {'server v2v':>10} {'endpoint':>8} {'ASR':>6} {'LLM 1st':>8} {'TTS 1st':>8}"
    print(header)
    for t in turns:
        print(
            f"{t['question'][:44]:44} {t['client_ms'] or 0:10.0f} {t['voice_to_voice'] or 0:10.0f} "
            f"{t['endpoint'] or 0:8.0f} {t['asr'] or 0:6.0f} {t['llm_first_clause'] or 0:8.0f} {t['tts_first_audio'] or 0:8.0f}"
        )
    for key in ("client_ms", "voice_to_voice"):
        values = [t[key] for t in turns if t[key] is not None]
        if values:
            print(f"median {key}: {statistics.median(values):.0f} ms")
    print(f"(1-minute load average during the run: {load:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
