"""Does a word and character n-gram model add to the fine-tuned bank intent model?

A TF-IDF n-gram logistic regression reads the query's spelling, which the MiniLM model sees
only through word pieces. Its log-probabilities join the intent mix (fine-tuned logits + linear
head on pooled features, bench/bank_finetune.py ``mix``) with one more weight.

    # the 90% model's outputs on train are cached by `bank_finetune.py mix --out MODEL`
    nice -n 10 .venv/bin/python bench/bank_ngram.py --model ~/.cache/duetto/bank-nlu/X-int8.onnx \
        --columns "layers 4-6" --mix-weight 0.35
    # two seeds' models side by side: the mean of their mixes, then the n-gram model on top
    nice -n 10 .venv/bin/python bench/bank_ngram.py --c 30 --model A-int8.onnx B-int8.onnx

Everything is fitted on the same 90% of BANKING77 train as the model (the n-gram model's C by
5-fold cross-validation inside it); the other 10% is the holdout the weights are read on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bank_finetune import (  # noqa: E402
    COLUMN_SETS,
    DATA,
    HOLDOUT,
    log_softmax,
    model_key,
    stratified_split,
)
from duetto.apps.bank.training import DEFAULT_CACHE, load_banking77  # noqa: E402

NGRAM_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
C_GRID = (3.0, 10.0, 30.0, 100.0)


def ngram_features():
    """Word 1-2 grams and character 2-5 grams inside word boundaries, sublinear TF-IDF."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, lowercase=True)
    chars = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, lowercase=True
    )
    return FeatureUnion([("words", words), ("chars", chars)])


def fit_ngram(texts: list[str], y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(ngram_features(), LogisticRegression(C=c, max_iter=3000))
    return model.fit(texts, y)


def choose_c(texts: list[str], y: np.ndarray) -> tuple[float, dict]:
    """C by 5-fold stratified cross-validation on the fit part only."""
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(texts, y))
    report = {}
    for c in C_GRID:
        right = 0
        for a, b in folds:
            model = fit_ngram([texts[i] for i in a], y[a], c)
            right += int((model.predict([texts[i] for i in b]) == y[b]).sum())
        report[c] = right / len(texts)
        print(f"  n-gram C={c}: cross-validated accuracy {report[c]:.4f}", flush=True)
    return max(report, key=report.get), report


def model_mix(model: Path, fit, held, labels: list[str], intents: list[str], args) -> np.ndarray:
    """One model's intent mix on the holdout (log-probabilities), as bank_finetune.py's."""
    from duetto.apps.bank.heads import fit_softmax
    from duetto.apps.bank.training import B77_C

    cached = DEFAULT_CACHE / f"b77-train-logits-pooled-{model_key(model)}.npz"
    if not cached.exists():
        raise SystemExit(f"{cached} is missing: run bank_finetune.py mix --out {model} first")
    with np.load(cached) as z:
        logits, x = z["logits"], z["pooled"]
    cols = COLUMN_SETS[args.columns]
    head = fit_softmax(x[fit][:, cols], [labels[i] for i in fit], B77_C, labels=intents)
    mixed = (1 - args.mix_weight) * log_softmax(logits[held]) + args.mix_weight * log_softmax(
        head.logits(x[held][:, cols])
    )
    return log_softmax(mixed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", type=Path, nargs="+", required=True,
                   help="the 90%% model's int8 ONNX; several: their mixes averaged (an ensemble)")  # fmt: skip
    p.add_argument("--columns", choices=list(COLUMN_SETS), default="layers 4-6")
    p.add_argument("--mix-weight", type=float, default=0.35, help="the linear head's share")
    p.add_argument("--c", type=float, default=None, help="skip the C search")
    args = p.parse_args(argv)

    texts, labels = load_banking77(DATA, "train")
    intents = sorted(set(labels))
    y = np.array([intents.index(label) for label in labels])
    fit, held = stratified_split(labels, HOLDOUT)
    fit, held = np.asarray(fit), np.asarray(held)
    base = np.mean([model_mix(m, fit, held, labels, intents, args) for m in args.model], axis=0)
    fit_texts = [texts[i] for i in fit]
    c, cv = (args.c, {}) if args.c else choose_c(fit_texts, y[fit])
    ngram = fit_ngram(fit_texts, y[fit], c)
    ng = np.log(np.clip(ngram.predict_proba([texts[i] for i in held]), 1e-12, None))
    report = {"n-gram alone": float((ng.argmax(1) == y[held]).mean())}
    if len(args.model) > 1:
        for m in args.model:
            one = model_mix(m, fit, held, labels, intents, args)
            report[f"{m.name} alone"] = float((one.argmax(1) == y[held]).mean())
    print_mix_report(report, base, ng, y[held], NGRAM_GRID, "n-gram", {"c": c, "cv": cv})
    return 0


def print_mix_report(report, base, second, gold, grid, name: str, extra: dict) -> None:
    """Holdout accuracy of ``base`` + w * ``second`` (log-probabilities) for w in ``grid``, after
    the rows already in ``report``; printed, then as one JSON line with ``extra``."""
    for w in grid:
        mixed = (1 - w) * log_softmax(base) + w * second
        report[f"mix + {name} w={w}"] = float((mixed.argmax(1) == gold).mean())
    for k, v in report.items():
        print(f"  holdout: {k}: {v:.4f}", flush=True)
    print(json.dumps({**extra, "holdout": report}), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
