"""Watermark robustness, false positives and audibility (duetto.safety.watermark).

Synthesizes clips with our own TTS (banking77 test queries as texts, two per clip), marks each
with a random payload through the streaming embedder (one call per TTS chunk, as the engine
does), applies every transformation of the issue and runs the detector. False positives: the
detector on every speechocean762 utterance (real, unmarked speech) and on the unmarked clips.
Audibility: watermark-to-signal ratio and PESQ (wide-band, 16 kHz) of marked vs. unmarked.

    .venv/bin/python bench/watermark.py                       # 300 clips, all 2,400 utterances
    .venv/bin/python bench/watermark.py --clips 20 --null 100  # a quick look

PESQ needs the ``pesq`` package (bench only: it wraps the ITU-T P.862 reference code, whose
licence is not an open-source one).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from duetto.audio import load_audio, resample
from duetto.safety import transforms as T
from duetto.safety.watermark import Payload, Watermarker, detect

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DUETTO_SHARED_DATA", ROOT.parent / "shared" / "data"))
SO = DATA / "speechocean762"
# Clips must be long enough for the 2-second crop to be a real crop.
MIN_CLIP_S = 2.5
CACHE = Path.home() / ".cache" / "duetto" / "bench-watermark"


def make_clips(n: int, seed: int = 0):
    """n TTS clips as lists of chunks (the engine's unit), cached on disk."""
    from duetto.config import TTSSettings
    from duetto.tts import load_tts

    cache = CACHE / f"clips-{n}-{seed}.npz"
    # The engine marks its TTS output itself; the bench needs the unmarked voice to compare.
    tts = load_tts(TTSSettings(watermark=False))
    if cache.exists():
        data = np.load(cache, allow_pickle=True)
        return list(data["chunks"]), int(data["rate"])
    texts = [r["text"] for r in csv.DictReader(open(DATA / "banking" / "banking77" / "test.csv"))]
    rng = np.random.default_rng(seed)
    clips = []
    while len(clips) < n:
        text = " ".join(texts[i] for i in rng.integers(0, len(texts), 2))
        chunks = [c for c in tts.stream(text) if len(c)]
        if sum(map(len, chunks)) / tts.sample_rate >= MIN_CLIP_S:
            clips.append(chunks)
    CACHE.mkdir(parents=True, exist_ok=True)
    arr = np.empty(len(clips), dtype=object)
    arr[:] = clips
    np.savez(cache, chunks=arr, rate=tts.sample_rate)
    return clips, tts.sample_rate


def babble(rate: int, n_talkers: int = 6, seconds: float = 10.0) -> np.ndarray:
    """Several speechocean762 train talkers summed: the classic babble noise."""
    rows = [json.loads(line) for line in open(SO / "train.jsonl")]
    speakers, out = set(), np.zeros(int(seconds * rate), np.float32)
    for row in rows:
        if row["speaker"] in speakers or len(speakers) >= n_talkers:
            continue
        speakers.add(row["speaker"])
        a = load_audio(SO / row["audio"], rate)
        a = np.tile(a, int(np.ceil(len(out) / len(a))))[: len(out)]
        out += a / (np.sqrt(np.mean(a**2)) + 1e-9)
    return out


def transformations(rate: int, noise: np.ndarray, rng: np.random.Generator):
    def crop2(x, r):
        start = float(rng.uniform(0, max(0.0, len(x) / r - 2.0)))
        return T.crop(x, r, 2.0, start)

    return {
        "none": lambda x, r: (x, r),
        "mp3 64k": lambda x, r: T.reencode(x, r, "mp3"),
        "opus 64k": lambda x, r: T.reencode(x, r, "opus"),
        "8 kHz and back": lambda x, r: T.telephone(x, r),
        "white 20 dB": lambda x, r: T.add_noise(x, r, None, 20, seed=int(rng.integers(1 << 30))),
        "babble 20 dB": lambda x, r: T.add_noise(x, r, noise, 20, seed=int(rng.integers(1 << 30))),
        "speed +5%": lambda x, r: T.speed(x, r, 1.05),
        "speed -5%": lambda x, r: T.speed(x, r, 0.95),
        "crop 2 s": crop2,
        "volume 0.8": lambda x, r: T.volume(x, r, 0.8),
        "1 s window": lambda x, r: T.crop(
            x, r, 1.0, float(rng.uniform(0.2, max(0.2, len(x) / r - 1.2)))
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument(
        "--null", type=int, default=2400, help="speechocean762 utterances (max 2,400)"
    )
    parser.add_argument("--save", help="write every detection score to this JSON file")
    parser.add_argument(
        "--only", choices=("robustness", "null"), help="run one half (e.g. in parallel)"
    )
    args = parser.parse_args()
    t0 = time.time()
    if args.only == "null":
        false_positives(args.null)
        return
    clips, rate = make_clips(args.clips)
    rng = np.random.default_rng(1)
    payloads = [Payload(int(rng.integers(16)), int(rng.integers(4096))) for _ in clips]
    plain = [np.concatenate(c) for c in clips]
    marked = []
    for chunks, payload in zip(clips, payloads, strict=True):
        mark = Watermarker(rate, payload)
        marked.append(np.concatenate([mark.process(c) for c in chunks]))
    print(f"{len(clips)} clips, {sum(map(len, plain)) / rate / len(clips):.1f} s on average, "
          f"{rate} Hz; synthesis+marking {time.time() - t0:.0f} s")  # fmt: skip

    print("\n== audibility (marked vs. unmarked)")
    wsr = [
        10 * np.log10(np.sum((m - p) ** 2) / np.sum(p**2))
        for p, m in zip(plain, marked, strict=True)
    ]
    print(
        f"watermark-to-signal ratio: mean {np.mean(wsr):.1f} dB (range {min(wsr):.1f} .. {max(wsr):.1f})"
    )
    try:
        from pesq import pesq

        scores = []
        for p, m in zip(plain, marked, strict=True):
            scores.append(pesq(16_000, resample(p, rate, 16_000), resample(m, rate, 16_000), "wb"))
        scores = np.array(scores)
        print(f"PESQ (wide-band): mean {scores.mean():.3f}, min {scores.min():.3f}, "
              f"clips >= 4.0: {(scores >= 4.0).mean():.1%}")  # fmt: skip
    except ImportError:
        print("PESQ: not measured (pip install pesq)")

    print("\n== detection after each transformation")
    print(
        f"{'transformation':<16} {'detected':>9} {'rate':>7} {'payload ok':>11} {'mean z':>7} {'min z':>6} {'s/clip':>7}"
    )
    noise = babble(rate)
    saved = {}
    for name, transform in transformations(rate, noise, np.random.default_rng(2)).items():
        t1 = time.time()
        found = exact = 0
        zs = []
        for m, payload in zip(marked, payloads, strict=True):
            y, r = transform(m, rate)
            d = detect(y, r)
            found += d.found
            exact += d.found and d.payload == payload
            zs.append(d.score)
        saved[name] = zs
        n = len(marked)
        print(f"{name:<16} {found:>5}/{n:<3} {found / n:>7.1%} {exact / n:>11.1%} {np.mean(zs):>7.2f} "
              f"{np.min(zs):>6.2f} {(time.time() - t1) / n:>7.2f}", flush=True)  # fmt: skip

    print("\n== false positives (unmarked audio)")
    fp = [detect(p, rate) for p in plain]
    saved["unmarked tts"] = [d.score for d in fp]
    if args.save:
        Path(args.save).write_text(json.dumps(saved))
    print(
        f"unmarked TTS clips: {sum(d.found for d in fp)}/{len(fp)} flagged, max z {max(d.score for d in fp):.2f}"
    )
    if args.only != "robustness":
        false_positives(args.null)
    print(f"\ntotal {time.time() - t0:.0f} s")


def false_positives(n: int) -> None:
    """The detector on real, unmarked speech: speechocean762 train + dev."""
    rows = []
    for split in ("train", "dev"):
        rows += [json.loads(line) for line in open(SO / f"{split}.jsonl")]
    # Interleaved order: a run stopped early is still an even sample of both splits.
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))][:n]
    t1 = time.time()
    found = []
    for i, r in enumerate(rows, 1):
        found.append(detect(load_audio(SO / r["audio"]), 16_000))
        if i % 100 == 0 or i == len(rows):
            zs = np.array([d.score for d in found])
            print(f"speechocean762 utterances: {sum(d.found for d in found)}/{len(zs)} flagged, "
                  f"max z {zs.max():.2f}, 99th percentile {np.percentile(zs, 99):.2f}, "
                  f"{(time.time() - t1) / len(zs):.2f} s each", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
