"""Equal error rate of voiceprint verification on speechocean762 dev, step by step.

Protocol (issue 10): each of the 20 dev speakers is enrolled on 3 utterances and tested on the
rest (target trials); an equal number of impostor trials pairs each enrolment with utterances of
other speakers of the same gender and age band (children under 12 vs. older).

Steps, each measured:
  0. Resemblyzer on the raw file, enrolment = the 3 utterances joined, cosine score;
  1. Resemblyzer's own preprocessing (webrtcvad speech-only trimming, level normalisation);
  2. our Silero VAD instead of webrtcvad for the speech-only cut;
  3. (on 1) enrolment = mean of the 3 unit-length utterance embeddings;
  4. (on 1) S-norm against a cohort of 50 speechocean762 *train* speakers (``cohort.npz``);
  5. the Silero-VAD embedding fused with it (mean of the two S-normalised scores).
The threshold is calibrated on trials of 50 other train speakers (never on dev).

    .venv/bin/python bench/voiceprint.py              # the table (embeddings cached)
    .venv/bin/python bench/voiceprint.py --write-cohort   # rebuild src/duetto/safety/cohort.npz
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DUETTO_SHARED_DATA", ROOT.parent / "shared" / "data"))
SO = DATA / "speechocean762"
CACHE = Path.home() / ".cache" / "duetto" / "bench-voiceprint"
N_ENROL = 3
# Train speakers are split: the first half is the S-norm cohort, the second calibrates the
# threshold. Utterances per train speaker used (the cohort entry averages them).
COHORT_SPEAKERS = 50
TRAIN_UTTS = 8


def rows(split: str) -> list[dict]:
    return [json.loads(line) for line in open(SO / f"{split}.jsonl")]


def band(row: dict) -> tuple[str, bool]:
    return row["gender"], row["age"] < 12


def embeddings(items: list[dict], variant: str) -> dict[str, np.ndarray]:
    """Embedding per utterance id, for variant raw | shipped | vad (cached on disk)."""
    from duetto.audio import load_audio
    from duetto.safety import voiceprint as V

    CACHE.mkdir(parents=True, exist_ok=True)
    file = CACHE / f"{variant}.npz"
    cached = dict(np.load(file)) if file.exists() else {}
    missing = [r for r in items if r["id"] not in cached]
    for i, r in enumerate(missing):
        audio = load_audio(SO / r["audio"])
        if variant == "raw":
            cached[r["id"]] = V.embed(audio, trim=False)
        elif variant == "shipped":
            from resemblyzer import preprocess_wav

            e = V._encoder().embed_utterance(preprocess_wav(audio, 16_000))
            cached[r["id"]] = e / np.linalg.norm(e)
        else:
            cached[r["id"]] = V.embed(audio, vad="silero")
        if i % 200 == 199:
            np.savez(file, **cached)
    if missing:
        np.savez(file, **cached)
    return cached


def joined_embedding(items: list[dict], variant: str) -> np.ndarray:
    """One embedding of the enrolment utterances joined into one signal (steps 0-2)."""
    from duetto.audio import load_audio
    from duetto.safety import voiceprint as V

    audio = np.concatenate([load_audio(SO / r["audio"]) for r in items])
    if variant == "shipped":
        from resemblyzer import preprocess_wav

        e = V._encoder().embed_utterance(preprocess_wav(audio, 16_000))
        return e / np.linalg.norm(e)
    return V.embed(audio, trim=variant == "vad", vad="silero")


def trials(items: list[dict], seed: int = 0):
    """(enrol rows, target test rows) per speaker, and (enrolled speaker, impostor row) pairs."""
    by_speaker = defaultdict(list)
    for r in items:
        by_speaker[r["speaker"]].append(r)
    rng = np.random.default_rng(seed)
    enrol, targets, impostors = {}, [], []
    for spk, utts in sorted(by_speaker.items()):
        enrol[spk] = utts[:N_ENROL]
        targets += [(spk, r) for r in utts[N_ENROL:]]
    for spk, _ in targets:
        pool = [r for r in items if r["speaker"] != spk and band(r) == band(enrol[spk][0])
                and r not in enrol[r["speaker"]]]  # fmt: skip
        impostors.append((spk, pool[int(rng.integers(len(pool)))]))
    return enrol, targets, impostors


def eer(target: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Equal error rate and the threshold where it occurs."""
    thresholds = np.sort(np.concatenate([target, impostor]))
    best = (1.0, 0.0)
    for t in thresholds:
        frr = np.mean(target < t)
        far = np.mean(impostor >= t)
        gap = abs(frr - far)
        if gap < best[0]:
            best = (gap, t, (frr + far) / 2)
    return best[2], best[1]


def score_all(items, variant: str, enrol_mode: str, cohort: np.ndarray | None):
    from duetto.safety.voiceprint import enrol_embedding, snorm

    enrol, targets, impostors = trials(items)
    emb = embeddings(items, variant)
    prints = {}
    for spk, utts in enrol.items():
        if enrol_mode == "joined":
            prints[spk] = joined_embedding(utts, variant)
        else:
            prints[spk] = enrol_embedding([emb[r["id"]] for r in utts])

    def score(spk, r):
        cos = float(prints[spk] @ emb[r["id"]])
        return snorm(cos, prints[spk], emb[r["id"]], cohort) if cohort is not None else cos

    t = np.array([score(s, r) for s, r in targets])
    i = np.array([score(s, r) for s, r in impostors])
    return t, i


def build_cohort(train: list[dict], variant: str = "shipped") -> tuple[np.ndarray, list[dict]]:
    """Cohort embeddings from the first COHORT_SPEAKERS train speakers; the rest for calibration."""
    from duetto.safety.voiceprint import enrol_embedding

    by_speaker = defaultdict(list)
    for r in train:
        by_speaker[r["speaker"]].append(r)
    speakers = sorted(by_speaker)
    cohort_rows = [r for s in speakers[:COHORT_SPEAKERS] for r in by_speaker[s][:TRAIN_UTTS]]
    calib_rows = [
        r for s in speakers[COHORT_SPEAKERS:] for r in by_speaker[s][: N_ENROL + TRAIN_UTTS]
    ]
    emb = embeddings(cohort_rows + calib_rows, variant)
    cohort = np.stack(
        [
            enrol_embedding([emb[r["id"]] for r in by_speaker[s][:TRAIN_UTTS]])
            for s in speakers[:COHORT_SPEAKERS]
        ]
    )
    return cohort, calib_rows


def main() -> None:
    import torch

    torch.set_num_threads(1)  # a small LSTM: threads only fight over a busy laptop CPU
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-cohort", action="store_true", help="rewrite src/duetto/safety/cohort.npz"
    )
    args = parser.parse_args()
    dev, train = rows("dev"), rows("train")
    cohort, calib = build_cohort(train, "shipped")
    cohort_vad, _ = build_cohort(train, "vad")
    if args.write_cohort:
        out = ROOT / "src" / "duetto" / "safety" / "cohort.npz"
        np.savez_compressed(out, embeddings=cohort.astype(np.float16))
        print(f"wrote {out} ({len(cohort)} speakers)")
    enrol, targets, impostors = trials(dev)
    print(f"speechocean762 dev: {len(enrol)} speakers, {len(targets)} target and {len(impostors)} "
          f"impostor trials (same gender and age band), enrolment on {N_ENROL} utterances")  # fmt: skip
    print(f"{'step':<62} {'EER':>6}")
    steps = [
        ("0 raw audio, joined enrolment, cosine", "raw", "joined", None),
        ("1 Resemblyzer's preprocessing (webrtcvad trim), as shipped", "shipped", "joined", None),
        ("2 Silero VAD speech-only instead of webrtcvad", "vad", "joined", None),
        ("3 on 1: enrolment = mean of unit utterance embeddings", "shipped", "mean", None),
        ("4 on 3: S-norm against 50 train speakers", "shipped", "mean", cohort),
        ("  (S-norm on 1's joined enrolment)", "shipped", "joined", cohort),
    ]
    for title, variant, mode, coh in steps:
        t, i = score_all(dev, variant, mode, coh)
        rate, _ = eer(t, i)
        print(f"{title:<62} {rate:>6.2%}", flush=True)
    t1, i1 = score_all(dev, "shipped", "joined", cohort)
    t2, i2 = score_all(dev, "vad", "joined", cohort_vad)
    rate, _ = eer((t1 + t2) / 2, (i1 + i2) / 2)
    print(f"{'5 S-norm (joined) fused with the Silero-VAD embedding':<62} {rate:>6.2%}")
    t, i = score_all(calib, "shipped", "joined", cohort)
    rate, threshold = eer(t, i)
    print(f"\nshipped pipeline (1 + S-norm) calibrated on 50 other train speakers: EER {rate:.2%} "
          f"at S-norm threshold {threshold:.2f}")  # fmt: skip
    from duetto.safety.voiceprint import THRESHOLD

    print(f"dev at the shipped threshold {THRESHOLD}: false rejections {np.mean(t1 < THRESHOLD):.2%}, "
          f"false acceptances {np.mean(i1 >= THRESHOLD):.2%}")  # fmt: skip


if __name__ == "__main__":
    main()
