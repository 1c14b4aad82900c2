"""Do the nearest training queries add to the bank intent mix?

    nice -n 10 .venv/bin/python bench/bank_knn.py --model ~/.cache/duetto/bank-nlu/X-int8.onnx

The holdout query's ``K`` nearest fit queries (cosine on the pooled last layer of the original
MiniLM, cached by ``bank_finetune.py mix``) vote for their intents with weight
exp(cos / ``TEMPERATURE``); the vote shares join the intent mix as log-probabilities with one
more weight, read on the 10% holdout (docs/bank.md, 2026-11-27 d).
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

from bank_finetune import COLUMN_SETS, DATA, HOLDOUT, log_softmax, model_key, stratified_split  # noqa: E402
from bank_ngram import model_mix  # noqa: E402
from duetto.apps.bank.training import DEFAULT_CACHE, load_banking77  # noqa: E402

K = 10
TEMPERATURE = 0.05
FLOOR = 1e-4
LAST_LAYER = slice(768, 1152)
WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def knn_logprobs(x_fit, y_fit, x_query, n_labels: int) -> np.ndarray:
    a = x_fit / np.linalg.norm(x_fit, axis=1, keepdims=True)
    b = x_query / np.linalg.norm(x_query, axis=1, keepdims=True)
    sims = b @ a.T
    near = np.argsort(-sims, axis=1)[:, :K]
    votes = np.full((len(b), n_labels), FLOOR)
    for row, idx in enumerate(near):
        np.add.at(votes[row], y_fit[idx], np.exp(sims[row, idx] / TEMPERATURE))
    return np.log(votes / votes.sum(1, keepdims=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", type=Path, nargs="+", required=True)
    p.add_argument("--columns", choices=list(COLUMN_SETS), default="layers 4-6")
    p.add_argument("--mix-weight", type=float, default=0.35, help="the linear head's share")
    args = p.parse_args(argv)
    texts, labels = load_banking77(DATA, "train")
    intents = sorted(set(labels))
    y = np.array([intents.index(label) for label in labels])
    fit, held = (np.asarray(s) for s in stratified_split(labels, HOLDOUT))
    base = np.mean([model_mix(m, fit, held, labels, intents, args) for m in args.model], axis=0)
    with np.load(DEFAULT_CACHE / f"b77-train-logits-pooled-{model_key(args.model[0])}.npz") as z:
        x = z["pooled"][:, LAST_LAYER]
    knn = knn_logprobs(x[fit], y[fit], x[held], len(intents))
    report = {"nearest queries alone": float((knn.argmax(1) == y[held]).mean())}
    for w in WEIGHT_GRID:
        mixed = (1 - w) * log_softmax(base) + w * knn
        report[f"mix + nearest w={w}"] = float((mixed.argmax(1) == y[held]).mean())
    for k, v in report.items():
        print(f"  holdout: {k}: {v:.4f}", flush=True)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
