"""The noisy-room settings on the whole dev set (issue 6): clean and babble at 5 dB.

Each row is one ``duetto eval asr`` run over all 400 dev utterances (per-utterance results kept
under ``--out``; a row whose results exist is not run again). The table splits every figure
into the 100 utterances earlier tables used (``--limit 100``: five per speaker) and the other
300, so the two can be compared:

    .venv/bin/python bench/noisy_room_dev.py            # about 45 minutes on two cores
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DEV = ROOT.parent / "shared" / "data" / "speechocean762" / "dev.jsonl"
SETTINGS = (
    "--model bundled-robust --word-filter learned --word-filter-threshold 0.5 "
    "--filter-below-snr 20 --noisy-beam-size 5"
).split()
SPEEDS = ["--noisy-speeds", "0.95,1.05,0.9,1.1"]
ROWS = {  # row: (results file, flags)
    "defaults (bundled tiny.en)": ("defaults", []),
    "noisy-room settings": ("settings", SETTINGS),
    "+ noisy_speeds": ("speeds", [*SETTINGS, *SPEEDS]),
    "+ noisy_speeds + noisy_lm": ("lm", [*SETTINGS, *SPEEDS, "--noisy-lm", "bundled"]),
    "+ noisy_speeds + noisy_second_model": (
        "second",
        [*SETTINGS, *SPEEDS, "--noisy-second-model", "bundled-base-robust"],
    ),
}
BABBLE = "babble 5 dB"


def run(name: str, file: str, flags: list[str], out: Path) -> list[dict]:
    path = out / f"{file}.jsonl"
    if not path.exists():
        print(f"{name}: decoding", flush=True)
        command = [str(ROOT / ".venv" / "bin" / "duetto"), "eval", "asr", str(DEV), "--snr",
                   "clean,5", "--noise", "babble", "--no-progress", "--results", str(path)]  # fmt: skip
        subprocess.run([*command, *flags], check=True, stdout=subprocess.DEVNULL)
    return [json.loads(line) for line in path.read_text().splitlines()]


def figures(rows: list[dict]) -> dict:
    def wer(condition: str) -> float:
        picked = [r for r in rows if r["condition"] == condition]
        return 100 * sum(r["errors"] for r in picked) / sum(r["words"] for r in picked)

    noisy = [r for r in rows if r["condition"] == BABBLE]
    missed = sum(r["missed_windows"] for r in noisy) / sum(r["speech_windows"] for r in noisy)
    rtf = sum(r["seconds"] for r in noisy) / sum(r["duration"] for r in noisy)
    clean, babble = wer("clean"), wer(BABBLE)
    return {"clean": clean, "babble": babble, "ratio": babble / clean, "miss": 100 * missed,
            "rtf": rtf, "words": sum(r["words"] for r in noisy)}  # fmt: skip


def main() -> int:
    from duetto.data.manifest import read_manifest, subset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "noisy-room-dev")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    hundred = {u.id for u in subset(read_manifest(DEV), 100)}
    parts = {
        "all 400": lambda r: True,
        "the 100": lambda r: r["id"] in hundred,
        "the other 300": lambda r: r["id"] not in hundred,
    }
    print("| row | utterances | words | clean | babble 5 dB | babble / clean | VAD miss | RTF |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (file, flags) in ROWS.items():
        rows = run(name, file, flags, args.out)
        for part, keep in parts.items():
            f = figures([r for r in rows if keep(r)])
            print(f"| {name} | {part} | {f['words']} | {f['clean']:.1f}% | {f['babble']:.1f}% | "
                  f"{f['ratio']:.2f}× | {f['miss']:.1f}% | {f['rtf']:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
