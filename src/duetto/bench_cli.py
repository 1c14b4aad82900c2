"""``duetto bench ...``: the benchmark scripts of a source checkout (they live in ``bench/``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from duetto.errors import DuettoError

BENCHES = {
    "latency": (
        "latency.py",
        "voice-to-voice latency and false cut-ins, side by side with Pipecat",
    ),
    "asr": ("asr_wer.py", "word error rate and real-time factor on speechocean762 dev"),
}


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark from bench/ (source checkout)")
    p.add_argument(
        "name", choices=sorted(BENCHES), help="; ".join(f"{k}: {v[1]}" for k, v in BENCHES.items())
    )
    p.add_argument("args", nargs="*", help="passed on to the script (after --)")
    p.set_defaults(func=run_bench, json=False)


def bench_dir() -> Path:
    folder = Path(__file__).resolve().parents[2] / "bench"
    if not folder.is_dir():
        raise DuettoError(
            "the benchmarks live in a source checkout of duetto", "git clone it and run make bench"
        )
    return folder


def run_bench(args) -> int:
    script = bench_dir() / BENCHES[args.name][0]
    return subprocess.call([sys.executable, str(script), *args.args])
