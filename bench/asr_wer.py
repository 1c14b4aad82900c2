"""Word error rate and real-time factor of `duetto transcribe` on speechocean762 dev.

    .venv/bin/python bench/asr_wer.py [--limit N] [--model bundled|bundled-base|PATH] [--standard]

Same code path as the CLI (duetto.asr.load_asr + transcribe), standard normalization from
duetto.data.textnorm (case, punctuation, numbers). Prints overall figures and a split by age band.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "speechocean762" / "dev.jsonl"


def age_band(age: int) -> str:
    return "child (<12)" if age < 12 else "teen (12-17)" if age < 18 else "adult (18+)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=str(DEV))
    parser.add_argument("--limit", type=int, default=None, help="first N utterances only")
    parser.add_argument("--model", default="bundled")
    parser.add_argument(
        "--standard", action="store_true", help="faster-whisper's padded 30 s window"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from duetto.asr import load_asr
    from duetto.audio import load_audio
    from duetto.config import ASRSettings
    from duetto.data.textnorm import wer

    manifest = Path(args.manifest)
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows = rows[: args.limit] if args.limit else rows
    started = time.perf_counter()
    asr = load_asr(ASRSettings(model=args.model, trim_window=not args.standard))
    load_s = time.perf_counter() - started
    refs, hyps, bands = [], [], []
    audio_s = decode_s = 0.0
    for i, row in enumerate(rows, 1):
        audio = load_audio(manifest.parent / row["audio"])
        result = asr.transcribe(audio)
        refs.append(row["text"])
        hyps.append(result.text)
        bands.append(age_band(int(row["age"])))
        audio_s += result.duration
        decode_s += result.seconds
        if i % 25 == 0 or i == len(rows):
            print(
                f"\r{i}/{len(rows)} utterances, WER so far {wer(refs, hyps):.1%}",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)
    report = {
        "model": args.model,
        "window": "standard 30 s" if args.standard else "trimmed (>= 10 s)",
        "utterances": len(rows),
        "audio_seconds": round(audio_s, 1),
        "wer": round(wer(refs, hyps), 4),
        "rtf": round(decode_s / audio_s, 3),
        "load_seconds": round(load_s, 2),
        "by_age": {
            band: {
                "n": bands.count(band),
                "wer": round(
                    wer(
                        [r for r, b in zip(refs, bands, strict=True) if b == band],
                        [h for h, b in zip(hyps, bands, strict=True) if b == band],
                    ),
                    4,
                ),
            }
            for band in sorted(set(bands))
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"ASR {report['model']} on {manifest.parent.name}/{manifest.name}: {len(rows)} utterances, {audio_s / 60:.1f} min of audio"
    )
    print(f"  WER {report['wer']:.1%}   RTF {report['rtf']:.3f}   model load {load_s:.2f} s")
    for band, figures in report["by_age"].items():
        print(f"  {band:<14} n={figures['n']:<4} WER {figures['wer']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
