"""Watermark robustness, false positives and audibility (duetto.safety.watermark).

Synthesizes clips with our own TTS (banking77 test queries as texts, two per clip), marks each
with a random payload through the streaming embedder (one call per TTS chunk, as the engine
does), applies every transformation of the issue and runs the detector. False positives: the
detector on every speechocean762 utterance (real, unmarked speech) and on the unmarked clips.
Audibility: watermark-to-signal ratio and PESQ (wide-band, 16 kHz) of marked vs. unmarked.

    .venv/bin/python bench/watermark.py                       # 300 clips, all 2,400 utterances
    .venv/bin/python bench/watermark.py --clips 20 --null 100  # a quick look

Results are journalled per clip and per utterance under ~/.cache/duetto/bench-watermark/ (keyed
by a hash of the detector code): a stopped run resumes where it was; --fresh starts over.

PESQ needs the ``pesq`` package (bench only: it wraps the ITU-T P.862 reference code, whose
licence is not an open-source one).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
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
    t0 = time.time()
    while len(clips) < n:
        text = " ".join(texts[i] for i in rng.integers(0, len(texts), 2))
        chunks = [c for c in tts.stream(text) if len(c)]
        if sum(map(len, chunks)) / tts.sample_rate >= MIN_CLIP_S:
            clips.append(chunks)
            if len(clips) % 50 == 0:
                print(
                    f"  synthesized {len(clips)}/{n} clips ({time.time() - t0:.0f} s)", flush=True
                )
    CACHE.mkdir(parents=True, exist_ok=True)
    arr = np.empty(len(clips), dtype=object)
    arr[:] = clips
    np.savez(cache, chunks=arr, rate=tts.sample_rate)
    return clips, tts.sample_rate


def code_version() -> str:
    """Hash of the detector and transformation code: partial results are only reused for it."""
    h = hashlib.sha1()
    for name in ("watermark.py", "transforms.py"):
        h.update((ROOT / "src" / "duetto" / "safety" / name).read_bytes())
    return h.hexdigest()[:10]


class Journal:
    """Results appended one JSON line per item, so a stopped run resumes where it was."""

    def __init__(self, path: Path, fresh: bool = False):
        self.path = path
        self.done: dict[int, dict] = {}
        if path.exists() and not fresh:
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by the stop
                    continue
                self.done[row["i"]] = row
        elif path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.done:
            print(f"  resuming: {len(self.done)} items already in {path}", flush=True)

    def add(self, row: dict) -> None:
        self.done[row["i"]] = row
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


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


def transformations(noise: np.ndarray):
    """The issue's transformations (and two references); ``rng`` draws crops and noise seeds."""

    def crop2(x, r, rng):
        start = float(rng.uniform(0, max(0.0, len(x) / r - 2.0)))
        return T.crop(x, r, 2.0, start)

    def window1(x, r, rng):
        return T.crop(x, r, 1.0, float(rng.uniform(0.2, max(0.2, len(x) / r - 1.2))))

    return {
        "none": lambda x, r, rng: (x, r),
        "mp3 64k": lambda x, r, rng: T.reencode(x, r, "mp3"),
        "opus 64k": lambda x, r, rng: T.reencode(x, r, "opus"),
        "8 kHz and back": lambda x, r, rng: T.telephone(x, r),
        "white 20 dB": lambda x, r, rng: T.add_noise(x, r, None, 20, int(rng.integers(1 << 30))),
        "babble 20 dB": lambda x, r, rng: T.add_noise(x, r, noise, 20, int(rng.integers(1 << 30))),
        "speed +5%": lambda x, r, rng: T.speed(x, r, 1.05),
        "speed -5%": lambda x, r, rng: T.speed(x, r, 0.95),
        "crop 2 s": crop2,
        "volume 0.8": lambda x, r, rng: T.volume(x, r, 0.8),
        "1 s window": window1,
    }


# What the workers of --jobs read (inherited through fork, not pickled per clip).
_STATE: dict = {}


def _clip_row(i: int) -> dict:
    """Every transformation of marked clip ``i`` and the detector's verdict on each."""
    st = _STATE
    row = {"i": i}
    # One generator per clip: a resumed run draws the same crops and noise as a whole one.
    rng = np.random.default_rng([2, i])
    for name, transform in st["transforms"].items():
        y, r = transform(st["marked"][i], st["rate"], rng)
        t = time.time()
        d = detect(y, r)
        row[name] = [bool(d.found), bool(d.found and d.payload == st["payloads"][i]), d.score,
                     round(time.time() - t, 3)]  # fmt: skip
    row["unmarked"] = detect(st["plain"][i], st["rate"]).score
    return row


@contextlib.contextmanager
def _pool(jobs: int):
    if jobs <= 1:
        yield None
        return
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        yield pool


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
    parser.add_argument(
        "--fresh", action="store_true", help="ignore partial results of an earlier run"
    )
    parser.add_argument(
        "--no-audibility", action="store_true", help="skip PESQ (a detector-only change)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for the clips")
    parser.add_argument(
        "--report", action="store_true", help="print the table of the clips done so far, run none"
    )
    args = parser.parse_args()
    t0 = time.time()
    if args.only == "null":
        false_positives(args.null, args.fresh)
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

    if not (args.report or args.no_audibility):
        audibility(plain, marked, rate)

    print("\n== detection after each transformation")
    transforms = transformations(babble(rate))
    journal = Journal(CACHE / f"robustness-{len(clips)}-{code_version()}.jsonl", args.fresh)
    t1 = time.time()
    todo = [] if args.report else [i for i in range(len(clips)) if i not in journal.done]
    _STATE.update(transforms=transforms, marked=marked, plain=plain, payloads=payloads, rate=rate)
    with _pool(args.jobs) as pool:
        results = pool.imap_unordered(_clip_row, todo) if pool else map(_clip_row, todo)
        for k, row in enumerate(results, 1):
            journal.add(row)
            if k % 25 == 0 or k == len(todo):
                rows = list(journal.done.values())
                worst = min(transforms, key=lambda n: sum(r[n][0] for r in rows))
                left = (time.time() - t1) / k * (len(todo) - k)
                print(f"  {len(rows)}/{len(clips)} clips; weakest so far: {worst} "
                      f"{sum(r[worst][0] for r in rows)}/{len(rows)}; {left / 60:.0f} min left",
                      flush=True)  # fmt: skip
    rows = [journal.done[i] for i in sorted(journal.done)]
    n = len(rows)
    print(f"{'transformation':<16} {'detected':>9} {'rate':>7} {'payload ok':>11} {'mean z':>7} "
          f"{'min z':>6} {'detect s':>8}")  # fmt: skip
    saved = {}
    for name in transforms:
        found, exact, z, sec = (np.array([r[name][j] for r in rows]) for j in range(4))
        saved[name] = z.tolist()
        print(f"{name:<16} {int(found.sum()):>5}/{n:<3} {found.mean():>7.1%} {exact.mean():>11.1%} "
              f"{z.mean():>7.2f} {z.min():>6.2f} {sec.mean():>8.2f}")  # fmt: skip

    print("\n== false positives (unmarked audio)")
    zs = np.array([r["unmarked"] for r in rows])
    saved["unmarked tts"] = zs.tolist()
    if args.save:
        Path(args.save).write_text(json.dumps(saved))
    from duetto.safety.watermark import THRESHOLD

    print(f"unmarked TTS clips: {int((zs >= THRESHOLD).sum())}/{n} flagged, max z {zs.max():.2f}")
    if args.only != "robustness":
        false_positives(args.null, args.fresh)
    print(f"\ntotal {time.time() - t0:.0f} s")


def audibility(plain, marked, rate: int) -> None:
    """Watermark-to-signal ratio and PESQ of every marked clip against its unmarked original."""
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


def false_positives(n: int, fresh: bool = False) -> None:
    """The detector on real, unmarked speech: speechocean762 train + dev."""
    from duetto.safety.watermark import THRESHOLD

    rows = []
    for split in ("train", "dev"):
        rows += [json.loads(line) for line in open(SO / f"{split}.jsonl")]
    # Interleaved order: a run stopped early is still an even sample of both splits.
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))][:n]
    journal = Journal(CACHE / f"null-{code_version()}.jsonl", fresh)
    t1 = time.time()
    todo = [i for i in range(len(rows)) if i not in journal.done]
    for k, i in enumerate(todo, 1):
        d = detect(load_audio(SO / rows[i]["audio"]), 16_000)
        journal.add({"i": i, "id": rows[i]["id"], "z": d.score})
        if k % 100 == 0 or k == len(todo):
            zs = np.array([journal.done[j]["z"] for j in range(len(rows)) if j in journal.done])
            print(f"speechocean762 utterances: {int((zs >= THRESHOLD).sum())}/{len(zs)} flagged, "
                  f"max z {zs.max():.2f}, 99th percentile {np.percentile(zs, 99):.2f}, "
                  f"{(time.time() - t1) / k:.2f} s each", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
