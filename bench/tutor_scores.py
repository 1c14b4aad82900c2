"""Pronunciation scoring vs five human experts on speechocean762 *dev* (speakers unseen in training).

    .venv/bin/python bench/tutor_scores.py [--limit N] [--timing 5] [--weights FILE]
        [--scorer ridge|gopt] [--gopt-weights FILE]

Prints Pearson correlation (PCC) at phone, word and utterance level, phone mispronunciation
detection precision/recall/F1 (human mean score < 2 counts as mispronounced, as does a predicted
score under the scorer's threshold), the published GOPT figures beside them, and the wall time
of scoring ~5 s utterances end to end (decode + ASR + models).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from duetto.apps.tutor import corpus
from duetto.apps.tutor.scoring import DEFAULT_SCORER, SCORERS, Scorer
from duetto.audio import load_audio

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speechocean762"
# Published on the full speechocean762 test split with its final labels (Gong et al., 2022).
GOPT = {"phone accuracy": 0.612, "word accuracy": 0.549, "word stress": 0.291, "word total": 0.549,
        "utterance accuracy": 0.714, "utterance completeness": 0.155, "utterance fluency": 0.753,
        "utterance prosodic": 0.760, "utterance total": 0.742}  # fmt: skip
TARGETS = {
    "phone accuracy": 0.55,
    "word accuracy": 0.50,
    "utterance total": 0.70,
    "utterance fluency": 0.70,
}
HUMAN_ERROR_BELOW = 2.0


def pcc(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = ~(np.isnan(a) | np.isnan(b))
    if keep.sum() < 3 or a[keep].std() == 0 or b[keep].std() == 0:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def evaluate(scorer: Scorer, utts, asr):
    phone_h, phone_p, word_h, word_p, utt_h, utt_p = [], [], [], [], [], []
    for utt in utts:
        ev = corpus.evidence_for(utt, asr=asr)
        wev = corpus.whisper_for(utt, scorer.asr)
        if scorer.uses_base:
            wev = replace(
                wev, base_states=corpus.base_states_for(utt, scorer.base_asr, scorer.base_layer)
            )
        pe, phone, word, u = scorer.predict(ev, wev)
        for k, p in enumerate(pe):
            human = utt.phone_scores.get((p.word, p.index))
            if human is not None:
                phone_h.append(human)
                phone_p.append(phone[k])
        for i in range(len(utt.words)):
            if i in utt.word_scores:
                word_h.append(utt.word_scores[i])
                word_p.append(word[i])
        utt_h.append(
            [utt.scores[k] for k in ("accuracy", "completeness", "fluency", "prosodic", "total")]
        )
        utt_p.append(u)
    return (np.array(phone_h), np.array(phone_p), np.array(word_h), np.array(word_p),
            np.array(utt_h), np.array(utt_p))  # fmt: skip


def timing(scorer: Scorer, utts, seconds: float, n: int = 5):
    """Wall and CPU time of Scorer.score on the ``n`` dev recordings closest to ``seconds`` long,
    with the 1-minute load average before and after (the machine may be shared)."""
    pool = sorted(utts, key=lambda u: abs(_duration(u) - seconds))[:n]
    scorer.score(load_audio(pool[0].audio), pool[0].text)  # warm: models load on first use
    walls, cpus, lengths = [], [], []
    load_before = os.getloadavg()[0]
    for utt in pool:
        audio = load_audio(utt.audio)
        started, cpu = time.perf_counter(), time.process_time()
        scorer.score(audio, utt.text)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        lengths.append(len(audio) / 16_000)
    return walls, cpus, statistics.mean(lengths), (load_before, os.getloadavg()[0])


def _duration(utt) -> float:
    import soundfile

    return soundfile.info(str(utt.audio)).duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=0, help="first N dev utterances only")
    parser.add_argument(
        "--timing", type=float, default=5.0, help="utterance length for the speed check (0: skip)"
    )
    parser.add_argument(
        "--weights", default=None, help="scorer weights (default: the shipped ones)"
    )
    parser.add_argument(
        "--scorer", choices=SCORERS, default=DEFAULT_SCORER, help="ridge, or the transformer blend"
    )
    parser.add_argument(
        "--gopt-weights", default=None, help="transformer weights (with --scorer gopt)"
    )
    args = parser.parse_args()
    scorer = Scorer(weights=args.weights, scorer=args.scorer, gopt_weights=args.gopt_weights)
    utts = corpus.load(args.data, "dev")
    if args.limit:
        utts = utts[: args.limit]
    asr = scorer.asr if scorer.models["asr"] else None
    ph, pp, wh, wp, uh, up = evaluate(scorer, utts, asr)
    rows = [("phone accuracy", pcc(ph, pp))]
    for k, name in enumerate(("accuracy", "stress", "total")):
        rows.append((f"word {name}", pcc(wh[:, k], wp[:, k])))
    for k, name in enumerate(("accuracy", "completeness", "fluency", "prosodic", "total")):
        rows.append((f"utterance {name}", pcc(uh[:, k], up[:, k])))
    print(
        f"speechocean762 dev: {len(utts)} utterances, {len(ph)} phones, {len(wh)} words; "
        f"ASR evidence: {bool(asr)}; scorer: {args.scorer}"
    )
    print(f"{'PCC':<24}{'duetto':>8}{'GOPT':>8}{'target':>8}")
    for name, value in rows:
        target = f"{TARGETS[name]:.2f}" if name in TARGETS else ""
        print(f"{name:<24}{value:>8.3f}{GOPT.get(name, float('nan')):>8.3f}{target:>8}")
    human_err = ph < HUMAN_ERROR_BELOW
    cut = scorer.threshold
    pred_err = pp < cut
    tp = float((human_err & pred_err).sum())
    precision = tp / max(pred_err.sum(), 1)
    recall = tp / max(human_err.sum(), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    print(f"\nphone mispronunciation (human < {HUMAN_ERROR_BELOW:g}, predicted < {cut:.2f}, chosen on train): "
          f"precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}  ({int(human_err.sum())} human errors)")  # fmt: skip
    for threshold in (1.7, 1.8, 1.9):
        pe_ = pp < threshold
        tp_ = float((human_err & pe_).sum())
        p_, r_ = tp_ / max(pe_.sum(), 1), tp_ / max(human_err.sum(), 1)
        print(
            f"  at predicted < {threshold}: precision {p_:.3f} recall {r_:.3f} F1 {2 * p_ * r_ / max(p_ + r_, 1e-9):.3f}"
        )
    if args.timing:
        walls, cpus, length, load = timing(scorer, utts, args.timing)
        print(f"\nscoring a {length:.1f} s utterance end to end ({len(walls)} dev recordings, "
              f"{os.cpu_count()} CPUs, load average {load[0]:.1f} before, {load[1]:.1f} after):\n"
              f"  wall median {statistics.median(walls):.2f} s ({', '.join(f'{t:.2f}' for t in walls)})\n"
              f"  CPU  median {statistics.median(cpus):.2f} s ({', '.join(f'{t:.2f}' for t in cpus)})")  # fmt: skip


if __name__ == "__main__":
    main()
