"""Feature vectors for the phone, word and utterance scorers, computed from :class:`Evidence`.

Pure functions of the evidence (no models), so training and scoring share them exactly.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from duetto.apps.tutor.align import FRAME_S, PHONES
from duetto.apps.tutor.evidence import Evidence
from duetto.apps.tutor.whisper_evidence import ENC_FRAME_S, WhisperEvidence

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
# A silence inside the utterance counts as a pause from this length on (shorter ones are
# closures and breaths inside fluent speech).
PAUSE_MIN_S = 0.2
# Free phone-loop scores per frame below this are treated as "no evidence" floor values.
_FLOOR = -200.0
_PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}

DIGITS = {
    "0": "ZERO", "1": "ONE", "2": "TWO", "3": "THREE", "4": "FOUR", "5": "FIVE", "6": "SIX",
    "7": "SEVEN", "8": "EIGHT", "9": "NINE",
}  # fmt: skip


@dataclass(frozen=True)
class PhoneEvidence:
    """What the acoustics say about one expected phone."""

    word: int
    index: int  # position in the word
    expected: str
    heard: str  # the free-decoded phone overlapping most ("-" when silence or noise)
    start: float  # seconds
    end: float
    llr: float  # per-frame forced minus free log-likelihood (<= ~0; lower = worse fit)
    forced: float  # per-frame forced log-likelihood
    aligned: bool


def phone_evidence(ev: Evidence) -> list[PhoneEvidence]:
    """One record per expected phone, in reference order (unaligned ones marked)."""
    al = ev.alignment
    free = al.free_frame_scores()
    by_word = {w.index: w for w in al.words}
    out = []
    for wi, phones in enumerate(ev.pronunciations):
        word = by_word.get(wi)
        for pi, expected in enumerate(phones):
            if word is None or pi >= len(word.phones):
                out.append(
                    PhoneEvidence(wi, pi, expected, "-", 0.0, 0.0, _FLOOR / 10, _FLOOR / 10, False)
                )
                continue
            p = word.phones[pi]
            n = max(p.frames, 1)
            free_sum = float(free[p.start : p.start + n].sum())
            llr = max((p.score - free_sum) / n, _FLOOR)
            out.append(
                PhoneEvidence(
                    wi,
                    pi,
                    expected,
                    _heard(al.free, p.start, p.start + n),
                    p.start * FRAME_S,
                    (p.start + n) * FRAME_S,
                    llr,
                    max(p.score / n, _FLOOR),
                    True,
                )  # fmt: skip
            )
    return out


def _heard(free, lo: int, hi: int) -> str:
    best, overlap = "-", 0
    for seg in free:
        o = min(hi, seg.end + 1) - max(lo, seg.start)
        if o > overlap:
            best, overlap = seg.phone, o
    return best if best in _PHONE_INDEX else "-"


def pauses(ev: Evidence) -> list[tuple[float, float]]:
    """(start, duration) in seconds of the silences between the first and last word."""
    words = ev.alignment.words
    if not words:
        return []
    first = min(w.start for w in words)
    last = max(w.start + w.frames for w in words)
    out = []
    for start, frames in ev.alignment.silences:
        if start > first and start + frames < last and frames * FRAME_S >= PAUSE_MIN_S:
            out.append((start * FRAME_S, frames * FRAME_S))
    return out


def asr_word_match(ev: Evidence) -> list[float]:
    """For each reference word, the ASR probability of the word heard there (0 if not heard)."""
    heard = [DIGITS.get(w.word, w.word) for w in ev.asr_words]
    probs = [w.probability for w in ev.asr_words]
    ref = list(ev.reference)
    out = [0.0] * len(ref)
    matcher = difflib.SequenceMatcher(a=ref, b=heard, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            out[block.a + k] = probs[block.b + k]
    return out


def _wer(ev: Evidence) -> float:
    heard = [DIGITS.get(w.word, w.word) for w in ev.asr_words]
    ref = list(ev.reference)
    if not ref:
        return 1.0
    matcher = difflib.SequenceMatcher(a=ref, b=heard, autojunk=False)
    edits = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            edits += max(i2 - i1, j2 - j1)
    return min(edits / len(ref), 2.0)


def pooled(wev: WhisperEvidence, start: float, end: float) -> np.ndarray:
    """Mean encoder state over ``[start, end]`` seconds (at least one frame)."""
    return _pool(wev.states, start, end, STATE_DIM)


def _pool(states: np.ndarray, start: float, end: float, dim: int) -> np.ndarray:
    if len(states) == 0:
        return np.zeros(dim, np.float32)
    lo = min(int(start / ENC_FRAME_S), len(states) - 1)
    hi = min(max(int(np.ceil(end / ENC_FRAME_S)), lo + 1), len(states))
    return states[lo:hi].astype(np.float32).mean(0)


STATE_DIM = 384  # Whisper tiny's encoder width
BASE_STATE_DIM = 512  # Whisper base's encoder width


def base_pooled(wev: WhisperEvidence, phones: list[PhoneEvidence]) -> np.ndarray:
    """Mean Whisper *base* encoder state over each phone's span: (phones, 512)."""
    if wev.base_states is None:
        raise ValueError(
            "these scorer weights need Whisper base states (WhisperEvidence.base_states)"
        )
    rows = [_pool(wev.base_states, p.start, p.end, BASE_STATE_DIM) for p in phones]
    return np.asarray(rows, np.float32).reshape(len(phones), BASE_STATE_DIM)


def word_prob_features(wev: WhisperEvidence, word: int) -> list[float]:
    """Log of the min, mean and first token probability Whisper gives a reference word."""
    probs = wev.word_probs[word] if word < len(wev.word_probs) and wev.word_probs[word] else (0.0,)
    return [
        float(np.log(min(probs) + 1e-4)),
        float(np.log(np.mean(probs) + 1e-4)),
        float(np.log(probs[0] + 1e-4)),
    ]


def phone_features(ev: Evidence, phones: list[PhoneEvidence], wev: WhisperEvidence) -> np.ndarray:
    rows = _phone_base(ev, phones)
    if not len(rows):
        return np.zeros((0, PHONE_DIM), np.float32)
    extra = [
        np.concatenate([pooled(wev, p.start, p.end), word_prob_features(wev, p.word)])
        for p in phones
    ]
    return np.concatenate([rows, np.asarray(extra, np.float32)], axis=1)


def _phone_base(ev: Evidence, phones: list[PhoneEvidence]) -> np.ndarray:
    """One row per expected phone: its own evidence, its neighbours', its word's and utterance's."""
    n = len(phones)
    if n == 0:
        return np.zeros((0, _PHONE_BASE), np.float32)
    llr = np.array([p.llr for p in phones])
    forced = np.array([p.forced for p in phones])
    dur = np.array([max(p.end - p.start, 0.0) for p in phones])
    match = np.array([float(p.heard == p.expected) for p in phones])
    aligned = np.array([float(p.aligned) for p in phones])
    word_ids = np.array([p.word for p in phones])
    word_mean = np.zeros(n)
    word_min = np.zeros(n)
    for w in set(word_ids.tolist()):
        mask = word_ids == w
        word_mean[mask] = llr[mask].mean()
        word_min[mask] = llr[mask].min()
    utt = [llr.mean(), llr.std(), np.median(llr), match.mean(), aligned.mean()]
    asr = asr_word_match(ev) if ev.asr_words or ev.asr_text else [0.0] * len(ev.reference)
    rows = []
    for k, p in enumerate(phones):
        onehot = np.zeros(len(PHONES))
        if p.expected in _PHONE_INDEX:
            onehot[_PHONE_INDEX[p.expected]] = 1.0
        prev_llr = llr[k - 1] if k > 0 and phones[k - 1].word == p.word else 0.0
        next_llr = llr[k + 1] if k + 1 < n and phones[k + 1].word == p.word else 0.0
        n_in_word = int((word_ids == p.word).sum())
        rows.append(
            np.concatenate(
                [
                    [
                        llr[k],
                        forced[k],
                        np.log(dur[k] + 0.01),
                        match[k],
                        aligned[k],
                        float(p.heard == "-"),
                        float(p.expected in VOWELS),
                        prev_llr,
                        next_llr,
                        float(p.index == 0),
                        float(p.index == n_in_word - 1),
                        word_mean[k],
                        word_min[k],
                        asr[p.word] if p.word < len(asr) else 0.0,
                    ],
                    utt,
                    onehot,
                    # per-phone slopes: how much a poor fit means differs from phone to phone
                    onehot * (llr[k] - utt[0]),
                    onehot * np.log(dur[k] + 0.01),
                ]  # fmt: skip
            )
        )
    return np.asarray(rows, np.float32)


_PHONE_BASE = 14 + 5 + 3 * len(PHONES)
PHONE_DIM = _PHONE_BASE + STATE_DIM + 3


def word_features(
    ev: Evidence, phones: list[PhoneEvidence], phone_pred: np.ndarray, wev: WhisperEvidence
) -> np.ndarray:
    """One row per reference word, from its phones' predicted scores and evidence."""
    n_words = len(ev.reference)
    asr = asr_word_match(ev) if ev.asr_words or ev.asr_text else [0.0] * n_words
    word_ids = np.array([p.word for p in phones]) if phones else np.zeros(0, int)
    llr = np.array([p.llr for p in phones]) if phones else np.zeros(0)
    match = np.array([float(p.heard == p.expected) for p in phones]) if phones else np.zeros(0)
    utt_pred = float(phone_pred.mean()) if len(phone_pred) else 0.0
    rows = []
    for w in range(n_words):
        mask = word_ids == w
        if not mask.any():
            rows.append(
                np.concatenate([np.zeros(_WORD_BASE + STATE_DIM), word_prob_features(wev, w)])
            )
            continue
        pp = phone_pred[mask]
        span = [p for p in phones if p.word == w]
        duration = max(span[-1].end - span[0].start, 0.0)
        rows.append(
            np.array(
                [
                    pp.mean(),
                    pp.min(),
                    np.sort(pp)[:2].mean(),
                    (pp < 1.5).mean(),
                    llr[mask].mean(),
                    llr[mask].min(),
                    match[mask].mean(),
                    float(mask.sum()),
                    np.log(duration + 0.01),
                    asr[w],
                    float(asr[w] > 0),
                    utt_pred,
                    float(all(p.aligned for p in span)),
                    *word_prob_features(wev, w),
                ]
            )  # fmt: skip
        )
    return np.asarray(rows, np.float32).reshape(n_words, WORD_DIM)


_WORD_BASE = 13
WORD_DIM = _WORD_BASE + 3


def utterance_features(
    ev: Evidence,
    phones: list[PhoneEvidence],
    phone_pred: np.ndarray,
    word_pred: np.ndarray,
    wev: WhisperEvidence,
) -> np.ndarray:
    """One row for the utterance: accuracy aggregates, fluency and ASR agreement."""
    llr = np.array([p.llr for p in phones]) if phones else np.zeros(1)
    match = np.array([float(p.heard == p.expected) for p in phones]) if phones else np.zeros(1)
    pp = phone_pred if len(phone_pred) else np.zeros(1)
    wp = word_pred if len(word_pred) else np.zeros(1)
    aligned = [p for p in phones if p.aligned]
    speech = sum(p.end - p.start for p in aligned)
    span = (aligned[-1].end - aligned[0].start) if aligned else 0.0
    ps = pauses(ev)
    total_pause = sum(d for _, d in ps)
    longest = max((d for _, d in ps), default=0.0)
    lead = aligned[0].start if aligned else ev.duration
    trail = ev.duration - aligned[-1].end if aligned else 0.0
    asr = asr_word_match(ev) if ev.asr_words or ev.asr_text else [0.0] * max(len(ev.reference), 1)
    dur = np.array([p.end - p.start for p in aligned]) if aligned else np.zeros(1)
    return np.array(
        [pp.mean(), pp.min(), (pp < 1.5).mean(), (pp < 1.0).mean(), wp.mean(), wp.min(),
         (wp < 7).mean(), llr.mean(), llr.std(), np.percentile(llr, 10), match.mean(),
         len(aligned) / max(len(phones), 1), len(aligned) / max(speech, 0.1),
         len(aligned) / max(span, 0.1), len(ps), total_pause, longest, total_pause / max(span, 0.1),
         np.log(lead + 0.01), np.log(max(trail, 0.0) + 0.01), np.log(ev.duration + 0.01),
         float(len(ev.reference)), np.mean(asr) if asr else 0.0, float(np.mean(np.array(asr) > 0)),
         _wer(ev), ev.asr_logprob, np.std(np.log(dur + 0.01)), float(ev.alignment.ok),
         *np.mean([word_prob_features(wev, w) for w in range(len(ev.reference))] or [[0.0] * 3], axis=0),
         *np.min([word_prob_features(wev, w) for w in range(len(ev.reference))] or [[0.0] * 3], axis=0),
         *pooled(wev, aligned[0].start if aligned else 0.0, aligned[-1].end if aligned else ev.duration)],
        np.float32,
    )  # fmt: skip


UTT_DIM = 28 + 6 + STATE_DIM


def phone_states(x: np.ndarray) -> np.ndarray:
    """The pooled Whisper states inside phone feature rows."""
    return x[:, _PHONE_BASE : _PHONE_BASE + STATE_DIM]


def prototypes(x: np.ndarray, expected: list[str], good: np.ndarray) -> np.ndarray:
    """Per phone, the mean centred state of its well-said instances (rows: PHONES order), plus the
    centre itself as the last row."""
    states = phone_states(x).astype(np.float64)
    centre = states.mean(0)
    out = np.zeros((len(PHONES) + 1, STATE_DIM))
    names = np.array(expected)
    for i, p in enumerate(PHONES):
        mask = (names == p) & good
        if mask.any():
            out[i] = states[mask].mean(0) - centre
    out[-1] = centre
    return out.astype(np.float32)


def prototype_features(x: np.ndarray, expected: list[str], protos: np.ndarray) -> np.ndarray:
    """GOP-like evidence from the states: cosine similarity to the expected phone's prototype,
    the best similarity to any other phone's, and their difference."""
    if len(x) == 0:
        return np.zeros((0, 3), np.float32)
    states = phone_states(x).astype(np.float64) - protos[-1]
    p = protos[:-1].astype(np.float64)
    sims = (states / (np.linalg.norm(states, axis=1, keepdims=True) + 1e-6)) @ (
        p / (np.linalg.norm(p, axis=1, keepdims=True) + 1e-6)
    ).T
    idx = np.array([_PHONE_INDEX.get(e, -1) for e in expected])
    own = np.where(idx >= 0, sims[np.arange(len(x)), np.maximum(idx, 0)], 0.0)
    others = sims.copy()
    others[np.arange(len(x)), np.maximum(idx, 0)] = -np.inf
    best_other = others.max(1)
    return np.stack([own, best_other, own - best_other], axis=1).astype(np.float32)


# Whisper GOP: a linear (LDA) phone classifier over the pooled states, trained on well-said
# train phones, gives each expected phone a log posterior, as Kaldi's GOP does with its acoustic
# model. The scorer sees it in context: its neighbours', word's and utterance's values.
GOP_FLOOR = -20.0


def phone_log_posteriors(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Log posterior of every phone (PHONES order) for each row's pooled states."""
    return states_log_posteriors(phone_states(x), coef, intercept)


def states_log_posteriors(
    states: np.ndarray, coef: np.ndarray, intercept: np.ndarray
) -> np.ndarray:
    """Log posterior of every phone (PHONES order) for each row of pooled ``states``."""
    return _log_softmax(states.astype(np.float64) @ coef.T + intercept)


def classifier_log_posteriors(states: np.ndarray, clf: dict) -> np.ndarray:
    """Log posterior of every phone (PHONES order) for each row of pooled ``states`` from a
    phone classifier's weights: ``coef``/``intercept`` alone (linear, LDA), or with a ReLU
    hidden layer in front (``mean``, ``scale`` standardise the states, ``hidden_w``/``hidden_b``)."""
    if "hidden_w" not in clf:
        return states_log_posteriors(states, clf["coef"], clf["intercept"])
    x = (states.astype(np.float64) - clf["mean"]) / clf["scale"]
    hidden = np.maximum(x @ clf["hidden_w"] + clf["hidden_b"], 0.0)
    return _log_softmax(hidden @ clf["coef"].T + clf["intercept"])


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    scores -= scores.max(1, keepdims=True)
    logp = scores - np.log(np.exp(scores).sum(1, keepdims=True))
    return np.maximum(logp, GOP_FLOOR)


def gop_features(
    logp: np.ndarray, phones: list[PhoneEvidence], norm: np.ndarray | None = None
) -> np.ndarray:
    """Per phone: own log posterior, best other, their margin, entropy, posterior, the previous
    and next phone's own value in the same word, word and utterance mean and min, the value
    standardised per phone (``norm``: rows mean, std in PHONES order), and the own value per
    phone identity (a slope per phone)."""
    n = len(phones)
    if n == 0:
        return np.zeros((0, GOP_DIM), np.float32)
    idx = np.array([_PHONE_INDEX.get(p.expected, -1) for p in phones])
    rows = np.arange(n)
    own = np.where(idx >= 0, logp[rows, np.maximum(idx, 0)], GOP_FLOOR)
    others = logp.copy()
    others[rows, np.maximum(idx, 0)] = -np.inf
    best = others.max(1)
    entropy = -(np.exp(logp) * logp).sum(1)
    word = np.array([p.word for p in phones])
    same_prev = np.r_[False, word[1:] == word[:-1]]
    same_next = np.r_[word[1:] == word[:-1], False]
    prev = np.where(same_prev, np.r_[0.0, own[:-1]], 0.0)
    nxt = np.where(same_next, np.r_[own[1:], 0.0], 0.0)
    word_mean, word_min = np.zeros(n), np.zeros(n)
    for w in np.unique(word):
        mask = word == w
        word_mean[mask], word_min[mask] = own[mask].mean(), own[mask].min()
    z = np.zeros(n)
    if norm is not None:
        safe = np.maximum(idx, 0)
        z = np.where(idx >= 0, (own - norm[0, safe]) / norm[1, safe], 0.0)
    onehot = np.zeros((n, len(PHONES)))
    onehot[rows[idx >= 0], idx[idx >= 0]] = 1.0
    columns = [own, best, own - best, entropy, np.exp(own), prev, nxt, word_mean, word_min,
               np.full(n, own.mean()), np.full(n, own.min()), z]  # fmt: skip
    return np.concatenate([np.stack(columns, 1), onehot * own[:, None]], 1).astype(np.float32)


GOP_DIM = 12 + len(PHONES)
