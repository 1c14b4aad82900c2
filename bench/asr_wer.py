"""Word error rate and real-time factor of `duetto transcribe` on speechocean762 dev.

    .venv/bin/python bench/asr_wer.py [--limit N] [--model bundled|bundled-base|PATH]

Same code path as the CLI (duetto.asr.load_asr + transcribe), standard normalization from
duetto.data.textnorm (case, punctuation, numbers). Both Whisper windows run on every utterance,
one after the other, so their real-time factors are measured side by side under the same load:
duetto's default (a window as long as the audio, 10 s at least) and faster-whisper's padded 30 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "speechocean762" / "dev.jsonl"
WINDOWS = {"trimmed": True, "standard-30s": False}


def age_band(age: int) -> str:
    return "child (<12)" if age < 12 else "teen (12-17)" if age < 18 else "adult (18+)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=str(DEV))
    parser.add_argument("--limit", type=int, default=None, help="every k-th utterance, N in all")
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from duetto.asr.whisper import WhisperASR
    from duetto.audio import load_audio
    from duetto.config import ASRSettings
    from duetto.data.textnorm import wer

    manifest = Path(args.manifest)
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    if args.limit:
        rows = rows[:: max(1, len(rows) // args.limit)][: args.limit]
    started = time.perf_counter()
    models = {
        name: WhisperASR(ASRSettings(model=args.model, trim_window=trim))
        for name, trim in WINDOWS.items()
    }
    load_s = (time.perf_counter() - started) / len(models)
    refs, bands = [], []
    hyps = {name: [] for name in models}
    seconds = dict.fromkeys(models, 0.0)
    audio_s = 0.0
    for i, row in enumerate(rows, 1):
        audio = load_audio(manifest.parent / row["audio"])
        refs.append(row["text"])
        bands.append(age_band(int(row["age"])))
        audio_s += len(audio) / 16_000
        for name, asr in models.items():
            result = asr.transcribe(audio)
            hyps[name].append(result.text)
            seconds[name] += result.seconds
        if i % 25 == 0 or i == len(rows):
            print(f"\r{i}/{len(rows)} utterances", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    def band_wer(name: str, band: str) -> float:
        pairs = [(r, h) for r, h, b in zip(refs, hyps[name], bands, strict=True) if b == band]
        return round(wer([r for r, _ in pairs], [h for _, h in pairs]), 4)

    report = {
        "model": args.model,
        "utterances": len(rows),
        "audio_seconds": round(audio_s, 1),
        "load_seconds": round(load_s, 2),
        "windows": {
            name: {
                "wer": round(wer(refs, hyps[name]), 4),
                "rtf": round(seconds[name] / audio_s, 3),
                "by_age": {
                    band: {"n": bands.count(band), "wer": band_wer(name, band)}
                    for band in sorted(set(bands))
                },
            }
            for name in models
        },
    }
    report["rtf_ratio_standard_over_trimmed"] = round(
        seconds["standard-30s"] / seconds["trimmed"], 2
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"ASR {args.model} on {manifest.parent.name}/{manifest.name}: {len(rows)} utterances, {audio_s / 60:.1f} min of audio, model load {load_s:.2f} s"
    )
    print(
        f"{'window':<14}{'WER':>8}{'RTF':>8}   "
        + "   ".join(f"{b} WER" for b in sorted(set(bands)))
    )
    for name, figures in report["windows"].items():
        by_age = "   ".join(
            f"{figures['by_age'][b]['wer']:>{len(b) + 4}.1%}" for b in sorted(set(bands))
        )
        print(f"{name:<14}{figures['wer']:>8.1%}{figures['rtf']:>8.3f}   {by_age}")
    print(
        f"standard-30s / trimmed decoding time, same utterances, same run: {report['rtf_ratio_standard_over_trimmed']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
