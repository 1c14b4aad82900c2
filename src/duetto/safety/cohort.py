"""Voiceprint score normalisation against a cohort of train speakers of the same group.

A verification score means more once it is compared with the scores the same voiceprint, and
the same test clip, get against speakers who are *not* the claimed one. This module keeps a
cohort of speechocean762 *train* speakers (each a voiceprint made like an enrolment: three
utterances, both systems of :mod:`duetto.safety.voiceprint`) and applies symmetric score
normalisation (S-norm, Kenny 2010; Matějka et al. 2017):

    s = ((x - mu_e) / sd_e + (x - mu_t) / sd_t) / 2

``mu_e, sd_e``: the enrolment clips scored against the cohort's voiceprints (kept at enrolment);
``mu_t, sd_t``: the test clip scored against them. Each system (Resemblyzer's centred cosine, the
GMM-UBM's log-likelihood ratio) is normalised alone, then the two are fused.

Only cohort speakers of the enrolled speaker's *group* are used: children (under 12), women,
men (12 and over). Impostors a system must reject are mostly people who sound alike, and a
cohort drawn from everyone makes every child look unlike the norm. The group is declared at
enrolment when it is known (a bank knows its customer's age), otherwise guessed from the voice by
a linear classifier on the centred Resemblyzer voiceprint (85% of train speakers right in
cross-validation; a wrong guess only moves the score's reference point).
Measured in bench/voiceprint.py (step 10) and docs/trust.md: the choices (group-matched S-norm
with the enrolment clips scored against cohort voiceprints, GMM relevance 8, fusion weight) were
made on the train cross-validation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

COHORT_FILE = Path(__file__).with_name("cohort.npz")
GROUPS = ("child", "female", "male")
# speechocean762's age bands for impostor trials: children under 12 against everyone older.
CHILD_AGE = 12
# A cohort group's score spread is never taken as smaller than this (a guard against a group
# whose cohort scores all coincide, e.g. a cohort of one).
MIN_STD = 1e-6


def group_of(gender: str, age: float) -> str:
    """The cohort group of a speaker from metadata: ``gender`` "f"/"m" (or a word), ``age`` in years."""
    if age < CHILD_AGE:
        return "child"
    g = gender.strip().lower()
    if g in ("f", "female", "woman", "w"):
        return "female"
    if g in ("m", "male", "man"):
        return "male"
    raise ValueError(f"unknown gender {gender!r}: use f or m")


def check_group(group: str) -> str:
    """``group`` if it is one of :data:`GROUPS`, else a clear error."""
    from duetto.errors import DuettoError

    if group not in GROUPS:
        raise DuettoError(f"unknown speaker group {group!r}", f"use one of: {', '.join(GROUPS)}")
    return group


def mean_std(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    return float(values.mean()), max(float(values.std()), MIN_STD)


@dataclass(frozen=True)
class Cohort:
    """Cohort voiceprints of both systems, their groups, the group classifier and the fusion."""

    res: np.ndarray  # (K, 256) centred, unit-length Resemblyzer voiceprints
    gmm: np.ndarray  # (K, C, D) MAP-adapted GMM means
    groups: np.ndarray  # (K,) group names
    relevance: float  # MAP relevance factor of the GMM voiceprints (enrolments use it too)
    ubm: str  # fingerprint of the UBM the GMM voiceprints were adapted from
    classifier: np.ndarray  # (len(GROUPS), 257): weights and bias on a centred voiceprint
    # Fusion of the normalised scores: each standardised by its mean and std over the train
    # cross-validation trials, then (1 - weight) * resemblyzer + weight * gmm.
    res_mean: float = 0.0
    res_std: float = 1.0
    gmm_mean: float = 0.0
    gmm_std: float = 1.0
    weight: float = 0.5
    threshold: float = 0.0  # on the fused score: the equal-error point of the train cv

    @property
    def fingerprint(self) -> str:
        """Short hash of the cohort: enrolment statistics against another cohort are not mixed."""
        digest = hashlib.sha1(self.res.astype(np.float32).tobytes())
        digest.update(self.ubm.encode())
        return digest.hexdigest()[:12]

    def predict_group(self, voiceprint: np.ndarray) -> str:
        """The group a centred voiceprint most likely belongs to (the linear classifier)."""
        logits = (
            self.classifier[:, :-1] @ np.asarray(voiceprint, np.float64) + self.classifier[:, -1]
        )
        return GROUPS[int(np.argmax(logits))]

    def members(self, group: str) -> np.ndarray:
        return np.flatnonzero(self.groups == check_group(group))

    def scores(self, ubm, centred_embedding: np.ndarray, features: np.ndarray | None,
               group: str) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
        """One clip scored against the group's cohort voiceprints: centred cosines, and LLRs
        when ``features`` are given (``ubm``: the GMM the cohort was adapted from)."""
        idx = self.members(group)
        cos = self.res[idx] @ np.asarray(centred_embedding, np.float32)
        llr = None if features is None else ubm.llr_many(self.gmm[idx], features)
        return cos.astype(np.float64), llr

    def enrolment_stats(self, ubm, clips: list[tuple[np.ndarray, np.ndarray]],
                        group: str) -> np.ndarray:  # fmt: skip
        """S-norm's enrolment side: mean and std of each system's scores of the enrolment
        clips (centred embedding, features) against the group's cohort, [res m, sd, gmm m, sd]."""
        res, gmm = zip(*(self.scores(ubm, e, f, group) for e, f in clips), strict=True)
        return np.array([*mean_std(np.concatenate(res)), *mean_std(np.concatenate(gmm))])

    def normalised(self, ubm, raw: tuple[float, float], enrol_stats: np.ndarray,
                   test: tuple[np.ndarray, np.ndarray], group: str) -> tuple[float, float]:  # fmt: skip
        """S-norm of both raw scores (centred cosine, LLR) of one trial."""
        res_t, gmm_t = self.scores(ubm, test[0], test[1], group)
        return (
            snorm(raw[0], enrol_stats[:2], mean_std(res_t)),
            snorm(raw[1], enrol_stats[2:], mean_std(gmm_t)),
        )

    def fuse(self, res: float, gmm: float, weight: float | None = None) -> float:
        w = self.weight if weight is None else weight
        a = (res - self.res_mean) / self.res_std
        b = (gmm - self.gmm_mean) / self.gmm_std
        return float((1 - w) * a + w * b)


def snorm(x: float, enrol: tuple[float, float], test: tuple[float, float]) -> float:
    """Symmetric normalisation of score ``x`` by the enrolment's and the test's cohort statistics."""
    return float(((x - enrol[0]) / enrol[1] + (x - test[0]) / test[1]) / 2)


def fit_classifier(embeddings: np.ndarray, groups: list[str], c: float = 1.0) -> np.ndarray:
    """Multinomial logistic regression (scikit-learn) from centred embeddings to groups, as
    one (len(GROUPS), 257) array of weights and biases."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000).fit(np.asarray(embeddings), list(groups))
    order = [list(clf.classes_).index(g) for g in GROUPS]
    return np.hstack([clf.coef_[order], clf.intercept_[order, None]])


def save(path: Path, cohort: Cohort) -> None:
    np.savez_compressed(
        path, res=cohort.res.astype(np.float16), gmm=cohort.gmm.astype(np.float16),
        groups=cohort.groups.astype("U6"), relevance=cohort.relevance, ubm=cohort.ubm,
        classifier=cohort.classifier.astype(np.float32),
        fusion=np.array([cohort.res_mean, cohort.res_std, cohort.gmm_mean, cohort.gmm_std,
                         cohort.weight, cohort.threshold]),
    )  # fmt: skip


@lru_cache(maxsize=2)
def load(path: str | None = None) -> Cohort | None:
    """The shipped cohort (``cohort.npz``), or None when the file is missing."""
    file = Path(path) if path else COHORT_FILE
    if not file.exists():
        return None
    z = np.load(file)
    fusion = [float(v) for v in z["fusion"]]
    return Cohort(z["res"].astype(np.float32), z["gmm"].astype(np.float64), z["groups"],
                  float(z["relevance"]), str(z["ubm"]), z["classifier"].astype(np.float64),
                  *fusion)  # fmt: skip
