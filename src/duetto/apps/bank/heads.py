"""Small trained heads on top of the sentence encoder, and the arithmetic to fit and run them.

Three heads, all linear, all stored in one ``.npz`` inside the package:

* ``b77``: softmax over the 77 BANKING77 intents (what is the question about);
* ``acts``: one sigmoid per NLU++ intent, multi-label (affirm, transfer, balance, card, lost ...);
* ``slots``: softmax over BIO slot tags per word (amount_of_money, date, company_name ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearHead:
    """``softmax``/``sigmoid`` of ``standardise(x) @ W.T + b``."""

    labels: tuple[str, ...]
    weights: np.ndarray  # (n_labels, n_features)
    bias: np.ndarray  # (n_labels,)
    mean: np.ndarray  # (n_features,)
    scale: np.ndarray  # (n_features,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.weights.T + self.bias

    def softmax(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z = z - z.max(-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(-1, keepdims=True)

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(x)))

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}_labels": np.array(self.labels),
            f"{prefix}_W": self.weights.astype(np.float32),
            f"{prefix}_b": self.bias.astype(np.float32),
            f"{prefix}_mean": self.mean.astype(np.float32),
            f"{prefix}_scale": self.scale.astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> LinearHead:
        return cls(
            tuple(str(x) for x in arrays[f"{prefix}_labels"]),
            arrays[f"{prefix}_W"].astype(np.float32),
            arrays[f"{prefix}_b"].astype(np.float32),
            arrays[f"{prefix}_mean"].astype(np.float32),
            arrays[f"{prefix}_scale"].astype(np.float32),
        )


def fit_softmax(
    x: np.ndarray, y: list[str], c: float, labels: list[str] | None = None
) -> LinearHead:
    """Multinomial logistic regression (scikit-learn, training only) on standardised features."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0) + 1e-6
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - mean) / scale, y)
    classes = [str(k) for k in model.classes_]
    w, b = model.coef_, model.intercept_
    if labels is not None:  # keep a fixed label order, with absent labels never predicted
        index = {k: i for i, k in enumerate(classes)}
        w = np.stack([w[index[k]] if k in index else np.zeros(x.shape[1]) for k in labels])
        b = np.array([b[index[k]] if k in index else -1e4 for k in labels])
        classes = labels
    return LinearHead(tuple(classes), w, b, mean, scale)


def fit_sigmoids(x: np.ndarray, y: list[set[str]], labels: list[str], c: float) -> LinearHead:
    """One binary logistic regression per label (multi-label)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0) + 1e-6
    xs = (x - mean) / scale
    weights, biases = [], []
    for label in labels:
        target = np.array([label in s for s in y])
        if target.all() or not target.any():
            weights.append(np.zeros(x.shape[1]))
            biases.append(10.0 if target.all() else -10.0)
            continue
        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(xs, target)
        weights.append(model.coef_[0])
        biases.append(model.intercept_[0])
    return LinearHead(tuple(labels), np.stack(weights), np.array(biases), mean, scale)
