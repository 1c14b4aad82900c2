"""Voice-to-voice latency, false cut-ins, CPU, memory and cold start, side by side.

    .venv/bin/python bench/latency.py [--conversations 6] [--systems duetto,duetto-server,...]

Every system gets the same audio: real non-native speech from speechocean762 dev (speakers who
pause and hesitate mid-sentence) joined into multi-turn conversations, plus two long turns made
with our TTS that hold a deliberate pause. Each system runs in its own process at real-time
pace and reports when each reply's first audio sample played; everything else is measured here
against the same ground truth (the last voiced sample of each user turn, from Silero VAD on the
clean turn audio), so no system grades itself.

Systems (see --systems):
- duetto           the default engine, LLM in-process (llama.cpp)  -> the targets
- duetto-silence   the same with the end-of-turn model off (500 ms of silence ends a turn)
- duetto-server    duetto with the LLM behind the same llama.cpp server Pipecat uses
- duetto-nospec    duetto-server with speculative replies switched off (shows their effect)
- pipecat-recommended / pipecat-matched   bench/systems/pipecat_runner.py (bench extra)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "speechocean762" / "dev.jsonl"
OUT = ROOT / "bench" / "out"
SEED = 7
# The user waits this long after a turn for the reply before speaking again (plus jitter).
GAP_S = 7.0
LONG_TURNS = (
    ("I would like to ask about my account,", "and also about the card I lost last week."),
    ("Can you tell me", "what the weather will be like tomorrow morning?"),
)
LONG_TURN_PAUSE_S = 0.7  # a deliberate mid-turn pause, longer than most endpointers wait
SPECULATE_S = 0.2  # duetto's default turn.speculate_after_ms


SYSTEMS = {
    "duetto": ["bench/systems/duetto_runner.py"],
    "duetto-silence": ["bench/systems/duetto_runner.py", "--set", "turn.end_of_turn=silence"],
    "duetto-server": ["bench/systems/duetto_runner.py", "--server"],
    "duetto-nospec": [
        "bench/systems/duetto_runner.py",
        "--server",
        "--set",
        "turn.speculate_after_ms=0",
    ],
    "pipecat-recommended": [
        "bench/systems/pipecat_runner.py",
        "--server",
        "--profile",
        "recommended",
    ],
    "pipecat-matched": ["bench/systems/pipecat_runner.py", "--server", "--profile", "matched"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--conversations", type=int, default=6, help="real-speech conversations (3 turns each)"
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--out", default=str(OUT / "latency"))
    parser.add_argument("--reuse", action="store_true", help="reuse result files already in --out")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=SYSTEM:KEY=VALUE[,KEY=VALUE]",
        help="an extra system: a duetto system with settings changed "
        "(e.g. spec100=duetto-server:turn.speculate_after_ms=100); add NAME to --systems",
    )
    args = parser.parse_args()
    for spec in args.variant:
        add_variant(parser, spec)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(out / "corpus", args.conversations)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    server = None
    if any("--server" in SYSTEMS[s] for s in systems):
        server = start_llm_server()
    results = {}
    try:
        for name in systems:
            path = out / f"{name}.json"
            if not (args.reuse and path.exists()):
                run_system(name, corpus, path, server_url=server[1] if server else None)
            if path.exists():
                results[name] = json.loads(path.read_text())
    finally:
        if server:
            server[0].terminate()
    truth = json.loads((corpus / "corpus.json").read_text())
    table = {name: score(truth, result) for name, result in results.items()}
    report(table)
    (out / "summary.json").write_text(json.dumps(table, indent=1))
    if "duetto" in results:
        draw_timeline(truth, results, corpus, out / "timeline.png")
        print(f"\ntimeline: {out / 'timeline.png'}")
    return 0


def add_variant(parser: argparse.ArgumentParser, spec: str) -> None:
    """NAME=SYSTEM:KEY=VALUE,... -> SYSTEMS[NAME], SYSTEM's command with --set KEY=VALUE each."""
    try:
        name, rest = spec.split("=", 1)
        base, changes = rest.split(":", 1)
    except ValueError:
        parser.error(f"--variant {spec!r}: expected NAME=SYSTEM:KEY=VALUE[,KEY=VALUE]")
    if base not in SYSTEMS or not SYSTEMS[base][0].endswith("duetto_runner.py"):
        parser.error(f"--variant {spec!r}: {base!r} is not a duetto system")
    sets = [item for change in changes.split(",") for item in ("--set", change)]
    SYSTEMS[name] = [*SYSTEMS[base], *sets]


# ----------------------------------------------------------------------------- corpus
def build_corpus(folder: Path, conversations: int) -> Path:
    """Conversations of real dev speech (3 turns each) plus one of two long TTS turns."""
    from duetto.audio import SAMPLE_RATE, load_audio, resample, write_wav

    if (folder / "corpus.json").exists():
        existing = json.loads((folder / "corpus.json").read_text())
        if existing.get("requested") == conversations:
            return folder
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["duration"] >= 2.0]
    rng = random.Random(SEED)
    rng.shuffle(rows)
    folder.mkdir(parents=True, exist_ok=True)
    turns_audio: list[list[tuple[np.ndarray, str]]] = []
    for c in range(conversations):
        picked = rows[3 * c : 3 * c + 3]
        turns_audio.append(
            [(load_audio(DEV.parent / r["audio"]), r["text"].capitalize()) for r in picked]
        )
    from duetto.tts import load_tts, synthesize

    tts = load_tts()
    long_turns = []
    for first, second in LONG_TURNS:
        a = resample(synthesize(tts, first), tts.sample_rate, SAMPLE_RATE)
        b = resample(synthesize(tts, second), tts.sample_rate, SAMPLE_RATE)
        pause = np.zeros(int(LONG_TURN_PAUSE_S * SAMPLE_RATE), np.float32)
        long_turns.append((np.concatenate([a, pause, b]), f"{first} {second}"))
    turns_audio.append(long_turns)
    meta = {"requested": conversations, "seed": SEED, "conversations": []}
    for i, turns in enumerate(turns_audio):
        parts = [np.zeros(int(0.5 * SAMPLE_RATE), np.float32)]
        spans = []
        position = len(parts[0])
        for audio, text in turns:
            start, end, pauses = voiced_span(audio)
            spans.append(
                {
                    "start": round((position + start) / SAMPLE_RATE, 3),
                    "end": round((position + end) / SAMPLE_RATE, 3),
                    "pauses": [
                        [
                            round((position + a) / SAMPLE_RATE, 3),
                            round((position + b) / SAMPLE_RATE, 3),
                        ]
                        for a, b in pauses
                    ],
                    "text": text,
                }
            )
            gap = np.zeros(int((GAP_S + rng.uniform(0, 1)) * SAMPLE_RATE), np.float32)
            parts += [audio, gap]
            position += len(audio) + len(gap)
        wav = f"c{i:02d}.wav"
        write_wav(folder / wav, np.concatenate(parts), SAMPLE_RATE)
        meta["conversations"].append({"id": f"c{i:02d}", "wav": wav, "turns": spans})
    (folder / "corpus.json").write_text(json.dumps(meta, indent=1))
    return folder


def voiced_span(audio: np.ndarray) -> tuple[int, int, list[tuple[int, int]]]:
    """First and last voiced sample (Silero, threshold 0.5) and the pauses >= 100 ms between."""
    from duetto.audio import SAMPLE_RATE
    from duetto.vad import speech_segments

    segments = speech_segments(audio, threshold=0.5, min_silence_ms=100, min_speech_ms=32)
    if not segments:
        return 0, len(audio), []
    pauses = [
        (int(a[1] * SAMPLE_RATE), int(b[0] * SAMPLE_RATE))
        for a, b in zip(segments, segments[1:], strict=False)
    ]
    return int(segments[0][0] * SAMPLE_RATE), int(segments[-1][1] * SAMPLE_RATE), pauses


# ----------------------------------------------------------------------------- running
def start_llm_server() -> tuple[subprocess.Popen, str]:
    """The bundled GGUF behind llama.cpp's OpenAI-compatible server (one thread, as duetto uses)."""
    from duetto.models import gguf_model

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", gguf_model("bundled"),
        "--chat_format", "gemma", "--n_threads", "1", "--n_ctx", "2048",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    import httpx

    for _ in range(120):
        try:
            httpx.get(f"{url}/models", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("llama.cpp server did not start (pip install 'llama-cpp-python[server]')")


def run_system(name: str, corpus: Path, out: Path, server_url: str | None) -> None:
    script, *extra = SYSTEMS[name]
    if not (ROOT / script).exists():
        print(f"{name}: {script} is not there, skipped", file=sys.stderr)
        return
    cmd = [sys.executable, str(ROOT / script), "--corpus", str(corpus), "--out", str(out)]
    if "--server" in extra:
        extra.remove("--server")
        cmd += ["--llm-url", server_url]
    cmd += extra + ["--t0", repr(time.time())]
    print(f"running {name} …", file=sys.stderr, flush=True)
    started = time.time()
    done = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        print(f"{name}: failed with status {done.returncode}", file=sys.stderr)
    else:
        print(f"{name}: {time.time() - started:.0f} s", file=sys.stderr)


# ----------------------------------------------------------------------------- scoring
def score(truth: dict, result: dict) -> dict:
    """Latency from each turn's last voiced sample to the first reply audio after it, and cut-ins."""
    v2v, cut_ins, missed, turns = [], 0, 0, 0
    by_id = {c["id"]: c for c in result["conversations"]}
    for conv in truth["conversations"]:
        starts = sorted(by_id.get(conv["id"], {}).get("reply_starts", []))
        spans = conv["turns"]
        for i, turn in enumerate(spans):
            turns += 1
            next_start = spans[i + 1]["start"] if i + 1 < len(spans) else 1e9
            if any(turn["start"] < r < turn["end"] for r in starts):
                cut_ins += 1
            after = [r for r in starts if turn["end"] <= r < next_start]
            if after:
                v2v.append((after[0] - turn["end"]) * 1000)
            else:
                missed += 1
    out = {
        "turns": turns,
        "replies": len(v2v),
        "missed": missed,
        "false_cut_ins": cut_ins,
        "false_cut_in_rate": round(cut_ins / turns, 3) if turns else None,
        "cpu_s_per_turn": round(result.get("cpu_s", 0) / max(turns, 1), 2),
        "peak_rss_mb": result.get("peak_rss_mb"),
        "cold_start_s": result.get("ready_s"),
    }
    if v2v:
        q = np.percentile(v2v, [50, 90, 99])
        out.update({"p50_ms": round(q[0]), "p90_ms": round(q[1]), "p99_ms": round(q[2])})
    stages = (
        "endpoint_ms",
        "asr_ms",
        "llm_first_token_ms",
        "first_clause_ms",
        "tts_first_audio_ms",
        "voice_to_voice_ms",
    )
    metrics = [m for c in result["conversations"] for m in c.get("metrics", [])]
    if metrics:
        out["stages_p50_ms"] = {
            s: round(statistics.median(v))
            for s in stages
            if (v := [m[s] for m in metrics if m.get(s) is not None])
        }
    return out


def report(table: dict) -> None:
    print(
        f"\n{'system':<22}{'p50':>7}{'p90':>7}{'p99':>7}{'cut-ins':>9}{'missed':>8}{'CPU s/turn':>11}{'RSS MB':>8}{'cold s':>8}"
    )
    for name, r in table.items():
        print(
            f"{name:<22}{r.get('p50_ms', '—'):>7}{r.get('p90_ms', '—'):>7}{r.get('p99_ms', '—'):>7}"
            f"{r['false_cut_ins']:>4}/{r['turns']:<4}{r['missed']:>8}{r['cpu_s_per_turn']:>11}"
            f"{r['peak_rss_mb'] or '—':>8}{r['cold_start_s'] or '—':>8}"
        )
    for name, r in table.items():
        if r.get("stages_p50_ms"):
            stages = ", ".join(
                f"{k.removesuffix('_ms')} {v}" for k, v in r["stages_p50_ms"].items()
            )
            print(f"  {name} stage medians (ms, engine's own clock): {stages}")
    ours = table.get("duetto-server") or table.get("duetto")
    for name, r in table.items():
        if name.startswith("pipecat") and ours and r.get("p50_ms") and ours.get("p50_ms"):
            print(f"p50 ratio {name} / duetto: {r['p50_ms'] / ours['p50_ms']:.2f}x")


# ----------------------------------------------------------------------------- picture
def draw_timeline(
    truth: dict, results: dict, corpus: Path, path: Path, conversation: int = 0
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from duetto.audio import load_audio

    conv = truth["conversations"][conversation]
    audio = load_audio(corpus / conv["wav"])
    duetto = next(c for c in results["duetto"]["conversations"] if c["id"] == conv["id"])
    fig, ax = plt.subplots(figsize=(14, 4.8))
    t = np.arange(len(audio)) / 16000
    ax.plot(t, 0.4 * audio / (np.abs(audio).max() + 1e-9) + 5, color="#4c72b0", lw=0.4)
    labels = [
        "user speech",
        "endpoint wait",
        "final ASR",
        "LLM first clause",
        "TTS first audio",
        "agent audio",
    ]
    for turn in conv["turns"]:
        ax.axvspan(turn["start"], turn["end"], ymin=0.86, ymax=0.98, color="#4c72b0", alpha=0.15)
        for a, b in turn["pauses"]:
            ax.axvspan(a, b, ymin=0.86, ymax=0.98, color="white")
    colors = ["#dd8452", "#55a868", "#c44e52", "#8172b3", "#2ca02c"]
    for m in duetto["metrics"]:
        end_of_speech = m["user_end"]
        endpoint = (m.get("endpoint_ms") or 0) / 1000
        ax.barh(4, endpoint, left=end_of_speech, height=0.6, color=colors[0])
        # A speculative reply runs ASR, LLM and TTS inside the endpoint wait, from the pause on.
        x = end_of_speech + (SPECULATE_S if m.get("speculative") else endpoint)
        for row, key in ((3, "asr_ms"), (2, "first_clause_ms"), (1, "tts_first_audio_ms")):
            width = (m.get(key) or 0) / 1000
            ax.barh(row, width, left=x, height=0.6, color=colors[4 - row])
            x += width
        if m.get("agent_start") is not None:
            ax.barh(
                0,
                m["agent_end"] - m["agent_start"],
                left=m["agent_start"],
                height=0.6,
                color=colors[4],
            )
            ax.annotate(f"{m['voice_to_voice_ms']:.0f} ms", (m["agent_start"], 0.45), fontsize=8)
    for name, res in results.items():
        if name.startswith("pipecat"):
            conv_r = next((c for c in res["conversations"] if c["id"] == conv["id"]), None)
            for r in conv_r["reply_starts"] if conv_r else []:
                ax.axvline(
                    r,
                    ymin=0.0,
                    ymax=0.12,
                    color="black",
                    ls=":" if "matched" in name else "-",
                    lw=1.2,
                )
    ax.set_yticks([5, 4, 3, 2, 1, 0], labels)
    ax.set_xlabel(
        "audio time (s); black lines: Pipecat's first reply audio (solid: recommended, dotted: matched)"
    )
    ax.set_title(
        f"duetto voice-to-voice timeline, conversation {conv['id']} (real speech, speechocean762 dev)"
    )
    ax.set_xlim(0, len(audio) / 16000)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
