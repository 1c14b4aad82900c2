"""Forced-alignment accuracy against ground truth we can trust: the synthesizer's own timings.

Piper reports how many samples each phoneme of an utterance lasts (its duration predictor drives
the audio, so these are the true phoneme times of the audio it made). We synthesize prompts of
speechocean762/dev with the bundled voice at several speaking rates, align them with
``duetto.data.align`` and compare word boundaries (starts and ends).

    .venv/bin/python bench/alignment.py [--limit 60] [--speeds 0.8,1.0,1.25]

Needs the ``piper`` extra (GPL, used here only to *make* test speech) and ``onnx`` (Piper patches
its model in memory to expose alignments).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "speechocean762" / "dev.jsonl"
# Piper's stress and length marks get frames of their own but are not sounds of their own.
MARKS = {"ˈ", "ˌ", "ː"}
BOUNDARY_TOKENS = {" ", "^", "$", ".", ",", "?", "!", ";", ":", "—", "…"}


def piper_with_alignments():
    """The bundled Piper voice, patched to report phoneme durations (via the engine's TTS object)."""
    from duetto.config import TTSSettings
    from duetto.models import piper_voice
    from duetto.tts import load_tts

    tts = load_tts(TTSSettings(watermark=False))  # the bare backend (the mark changes no timing)
    voice_class = type(tts.voice)  # piper.PiperVoice, reached through duetto.tts (GPL stays there)
    return voice_class.load(str(piper_voice("bundled")), include_alignments=True)


def synth_words(
    voice, text: str, speed: float
) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """Audio and the true (start, end) of each word, from Piper's phoneme alignments."""
    base = getattr(voice, "_duetto_base_length_scale", None)
    if base is None:
        base = voice._duetto_base_length_scale = voice.config.length_scale
    voice.config.length_scale = base / speed  # the default synthesis config reads it from here
    audio, words, t = [], [], 0
    for chunk in voice.synthesize(text, include_alignments=True):
        if not chunk.phoneme_alignments:
            raise SystemExit("this Piper voice gives no alignments (install onnx)")
        rate = chunk.sample_rate
        current: list[int] = []
        for al in chunk.phoneme_alignments:
            n = int(al.num_samples)
            if al.phoneme in BOUNDARY_TOKENS:
                if current:
                    words.append((current[0] / rate, current[1] / rate))
                current = []
            elif al.phoneme not in MARKS:
                current = [t if not current else current[0], t + n]
            t += n
        if current:
            words.append((current[0] / rate, current[1] / rate))
        audio.append(chunk.audio_float_array)
    return np.concatenate(audio), rate, words


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--limit", type=int, default=60, help="prompts from dev.jsonl (distinct texts)"
    )
    parser.add_argument("--speeds", default="0.8,1.0,1.25")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from duetto.audio import SAMPLE_RATE, resample
    from duetto.data.align import Aligner, text_words
    from duetto.errors import DuettoError

    texts = []
    for line in DEV.read_text().splitlines():
        t = json.loads(line)["text"]
        if t not in texts and not any(c.isdigit() for c in t):
            texts.append(t)
    texts = texts[: args.limit]
    voice = piper_with_alignments()
    aligner = Aligner()
    errors: dict[str, list[float]] = {"start": [], "end": [], "boundary": []}
    skipped = 0
    failed: list[str] = []
    per_speed = {}
    for speed in [float(s) for s in args.speeds.split(",")]:
        errs = []
        for text in texts:
            audio, rate, truth = synth_words(voice, text.lower().capitalize() + ".", speed)
            words = text_words(text)
            if len(truth) != len(words):
                skipped += 1  # espeak split or merged words: no one-to-one truth
                continue
            try:
                result = aligner.align(resample(audio, rate, SAMPLE_RATE), text)
            except DuettoError as exc:
                failed.append(f"{text!r} at speed {speed:g}: {exc}")
                continue
            if len(result.words) != len(truth):
                skipped += 1
                continue
            for (ts, te), w in zip(truth, result.words, strict=True):
                errors["start"].append(abs(w.start - ts))
                errors["end"].append(abs(w.end - te))
            errs += _boundary_errors(truth, result.words)
        errors["boundary"] += errs
        per_speed[speed] = _stats(np.array(errs))
    summary = {
        "prompts": len(texts),
        "skipped": skipped,
        "failed": failed,
        "boundaries": len(errors["boundary"]),
        "boundaries_all": _stats(np.array(errors["boundary"])),
        "starts_and_ends": _stats(np.array(errors["start"] + errors["end"])),
        "starts": _stats(np.array(errors["start"])),
        "ends": _stats(np.array(errors["end"])),
        "per_speed": per_speed,
        "targets": {"median_ms": 40, "within_100ms": 0.9},
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"forced alignment vs Piper phoneme timings: {summary['boundaries']} word boundaries, "
        f"{len(texts)} prompts, {skipped} utterance(s) skipped"
    )
    print(
        f"{'set':<12} {'median ms':>10} {'mean ms':>8} {'p90 ms':>7} {'<=40ms':>7} {'<=100ms':>8}"
    )
    rows = [("boundaries", summary["boundaries_all"]), ("start+end", summary["starts_and_ends"])]
    rows += [("starts", summary["starts"]), ("ends", summary["ends"])]
    rows += [(f"speed {k:g}", v) for k, v in per_speed.items()]
    for name, s in rows:
        print(
            f"{name:<12} {s['median_ms']:>10.1f} {s['mean_ms']:>8.1f} {s['p90_ms']:>7.1f} "
            f"{s['within_40ms']:>7.1%} {s['within_100ms']:>8.1%}"
        )
    for f in failed:
        print(f"alignment failed: {f}")
    print("targets: median <= 40 ms, >= 90% within 100 ms")
    return 0


def _boundary_errors(truth: list[tuple[float, float]], words) -> list[float]:
    """Error of each word boundary: the utterance start and end, and between neighbours.

    Between two words Piper spends a word-separator token (30-100 ms of transition, no pause), so
    the true boundary is an interval [end of word k, start of word k+1]; an aligner that puts one
    boundary point anywhere inside it is exact. Where it leaves a gap (a pause), its end of word
    k and start of word k+1 are each scored against that interval.
    """
    errs = [abs(words[0].start - truth[0][0]), abs(words[-1].end - truth[-1][1])]
    for k in range(len(words) - 1):
        lo, hi = truth[k][1], truth[k + 1][0]
        for t in {words[k].end, words[k + 1].start}:
            errs.append(max(lo - t, t - hi, 0.0))
    return errs


def _stats(e: np.ndarray) -> dict:
    if e.size == 0:
        return {
            "median_ms": float("nan"),
            "mean_ms": float("nan"),
            "p90_ms": float("nan"),
            "within_40ms": 0.0,
            "within_100ms": 0.0,
        }
    return {
        "median_ms": float(np.median(e) * 1000),
        "mean_ms": float(np.mean(e) * 1000),
        "p90_ms": float(np.percentile(e, 90) * 1000),
        "within_40ms": float(np.mean(e <= 0.04)),
        "within_100ms": float(np.mean(e <= 0.1)),
    }


if __name__ == "__main__":
    sys.exit(main())
