"""Compare ASR settings (and n-best scoring) by what the bank NLU makes of their transcripts.

    # transcripts first (bench/bank_spoken.py, one run per setting, all on the same kept audio)
    nice -n 10 .venv/bin/python bench/bank_spoken.py --split train --per-intent 3 --set a --prompt
    nice -n 10 .venv/bin/python bench/bank_spoken.py --split train --per-intent 3 --set a --prompt --asr-model bundled-base
    # then, per setting: intent accuracy (shipped NLU), WER, CPU seconds per decode
    nice -n 10 .venv/bin/python bench/bank_spoken_nlu.py --split train --per-intent 3 \\
        --tags prompt-set-a bundled-base-prompt-set-a

A tag with n-best hypotheses (``--nbest`` in bench/bank_spoken.py) is also scored with the
intent distributions of its hypotheses averaged, each weighted by ``softmax(score / T)`` over
the hypotheses' mean token log-probabilities, for every T of ``--temperatures`` (T -> 0 is the
top hypothesis alone). Rows are compared only on queries every tag has.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bank_spoken import cache_path, read_transcripts  # noqa: E402
from duetto.apps.bank.nlu import BankNLU  # noqa: E402
from duetto.apps.bank.training import DEFAULT_CACHE  # noqa: E402

CONDITIONS = ("clean", "babble")
TEMPERATURES = (0.05, 0.1, 0.2, 0.5)


def intent_probs(nlu: BankNLU, texts: list[str], memo: dict) -> np.ndarray:
    """(n, 77) intent distributions, one utterance at a time as at run time (memoised)."""
    todo = [t for t in dict.fromkeys(texts) if t not in memo]
    for text, enc in zip(
        todo, nlu.encoder.encode([t or " " for t in todo], batch_size=1), strict=True
    ):
        memo[text] = nlu.intent_probs(enc)
    return np.stack([memo[t] for t in texts])


def nbest_probs(nlu: BankNLU, hyps: list[list], temperature: float, memo: dict) -> np.ndarray:
    """Each row's hypotheses scored as a voice call does (``BankNLU.nbest_probs``)."""
    return np.stack([nlu.nbest_probs(row, temperature, memo) for row in hyps])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--split", choices=("test", "train", "holdout"), default="train")
    p.add_argument("--per-intent", type=int, default=3)
    p.add_argument("--tags", nargs="+", required=True, help="bench/bank_spoken.py cache tags")
    p.add_argument("--combine", nargs="*", default=[],
                   help="also score the intent distributions of these tags' transcripts averaged")  # fmt: skip
    p.add_argument("--temperatures", type=float, nargs="*", default=list(TEMPERATURES))
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = p.parse_args(argv)

    from duetto.data.textnorm import wer

    sets = {
        t: read_transcripts(cache_path(args.cache, args.split, args.per_intent, t))
        for t in dict.fromkeys(args.tags + args.combine)
    }
    common = set.intersection(*({r["i"] for r in rows} for rows in sets.values()))
    nlu = BankNLU()
    labels = list(nlu.intent_labels)
    memo: dict = {}
    print(f"{len(common)} {args.split} queries in every set", flush=True)
    print(
        "| ASR setting | scoring | clean | babble 5 dB | WER clean / babble | CPU s per decode (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for tag, rows in sets.items():
        rows = sorted((r for r in rows if r["i"] in common), key=lambda r: r["i"])
        gold = np.array([labels.index(r["label"]) for r in rows])
        refs = [r["text"] for r in rows]
        accs, wers, cpu = {}, {}, {}
        for cond in CONDITIONS:
            hyp = [r[cond] for r in rows]
            accs[cond] = float((intent_probs(nlu, hyp, memo).argmax(1) == gold).mean())
            wers[cond] = wer(refs, hyp)
            times = [r[f"{cond}_cpu_s"] for r in rows if f"{cond}_cpu_s" in r]
            cpu[cond] = statistics.median(times) if times else float("nan")
        print(f"| {tag or 'tiny.en'} | top hypothesis | {accs['clean']:.2%} | {accs['babble']:.2%} | "
              f"{wers['clean']:.1%} / {wers['babble']:.1%} | {cpu['clean']:.2f} / {cpu['babble']:.2f} |", flush=True)  # fmt: skip
        if "clean_nbest" not in rows[0]:
            continue
        for temperature in args.temperatures:
            accs = {
                cond: float((nbest_probs(nlu, [r[f"{cond}_nbest"] for r in rows], temperature, memo).argmax(1) == gold).mean())
                for cond in CONDITIONS
            }  # fmt: skip
            print(f"| {tag} | n-best, T={temperature:g} | {accs['clean']:.2%} | {accs['babble']:.2%} | | |", flush=True)  # fmt: skip
    if args.combine:
        by_tag = {
            t: sorted((r for r in sets[t] if r["i"] in common), key=lambda r: r["i"])
            for t in args.combine
        }
        rows = by_tag[args.combine[0]]
        gold = np.array([labels.index(r["label"]) for r in rows])
        accs = {
            cond: float((sum(intent_probs(nlu, [r[cond] for r in by_tag[t]], memo) for t in args.combine).argmax(1) == gold).mean())
            for cond in CONDITIONS
        }  # fmt: skip
        print(
            f"| {' + '.join(args.combine)} | averaged | {accs['clean']:.2%} | {accs['babble']:.2%} | | |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
