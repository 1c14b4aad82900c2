"""Reproduce the earlier frozen-encoder NLU heads: the baseline of ``bench/bank_nlu.py --baseline``.

What ships now is made by ``bench/bank_finetune.py`` (docs/bank.md); this script writes to the
cache, never into the package (its heads read the torch encoder's features, not the ONNX model's).

    nice -n 10 .venv/bin/python scripts/train_bank_nlu.py            # CV on train, then fit, save
    nice -n 10 .venv/bin/python scripts/train_bank_nlu.py --no-cv    # fit with the chosen settings

Everything is fitted on training data only: BANKING77 ``train.csv`` (the regularisation C of the
intent head is chosen by 5-fold cross-validation on train; ``test.csv`` is never read here) and
all NLU++ banking folds in ../shared/data for the dialogue-act and slot heads (bench/bank_nlu.py
reports their 4-fold cross-validation). Encoder features are cached under --cache.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from duetto.apps.bank.encoder import SentenceEncoder  # noqa: E402
from duetto.apps.bank.training import (  # noqa: E402
    ACT_C,
    B77_C,
    DEFAULT_CACHE,
    SLOT_C,
    banking77_cross_validation,
    encode_cached,
    fit_act_head,
    fit_b77_head,
    fit_slot_head,
    load_banking77,
    load_nlupp,
)

# Candidate regularisation strengths for the BANKING77 head (inverse L2 weight).
C_GRID = (0.05, 0.1, 0.2, 0.5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--out", type=Path, default=DEFAULT_CACHE / "nlu-frozen-heads.npz")
    p.add_argument("--no-cv", action="store_true", help="skip the cross-validation of C")
    p.add_argument("--grid", default=",".join(map(str, C_GRID)), help="C values to cross-validate")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds on BANKING77 train")
    args = p.parse_args(argv)

    encoder = SentenceEncoder()
    texts, labels = load_banking77(args.data, "train")
    train = encode_cached(encoder, texts, args.cache, "banking77-train")
    x = np.stack([e.sentence for e in train])
    c = B77_C
    report: dict = {}
    if not args.no_cv:
        scores = {}
        for cc in (float(v) for v in args.grid.split(",")):
            scores[cc] = banking77_cross_validation(x, labels, cc, folds=args.folds)
            print(
                f"BANKING77 train {args.folds}-fold CV  C={cc:<5} accuracy {scores[cc]:.4f}",
                flush=True,
            )
        c = max(scores, key=scores.get)
        report["banking77_cv"] = {str(k): round(v, 4) for k, v in scores.items()}
    b77 = fit_b77_head(x, labels, c)

    examples = load_nlupp(args.data)
    nlupp = encode_cached(encoder, [e.text for e in examples], args.cache, "nlupp")
    act_labels = sorted({i for e in examples for i in e.intents})
    acts = fit_act_head(nlupp, examples, act_labels, ACT_C)
    slots = fit_slot_head(nlupp, examples, SLOT_C)

    arrays = b77.to_arrays("b77") | acts.to_arrays("acts") | slots.to_arrays("slots")
    # float16 halves the file; the heads' outputs change by under 1e-3.
    arrays = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in arrays.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    report |= {"b77_C": c, "act_C": ACT_C, "slot_C": SLOT_C, "bytes": args.out.stat().st_size}
    print(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
