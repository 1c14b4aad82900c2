"""A learned word filter for noisy rooms: "is this recognized word the user's?"

Whisper writes down background talkers' words; they come out as unsure, short, quiet-ish words
in noisy clips. A logistic regression over a few cues of each aligned word (its probability and
its neighbours', its level against the utterance's loud level and noise floor, its duration, the
clip's blind SNR, the transcript's mean probability and no-speech probability) gives the
probability that the word is the target speaker's; words under the threshold are dropped.

The weights ship as a small npz (``word-filter.npz`` beside this file), trained by
``bench/word_filter.py`` on speechocean762 *train* speakers only (docs/robustness.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from duetto.audio import LEVEL_FRAME, SAMPLE_RATE, frame_energies
from duetto.errors import ModelNotFoundError
from duetto.frames import Word

SHIPPED = Path(__file__).with_name("word-filter.npz")
# The order of the columns word_features returns; the npz names them too, checked on load.
FEATURES = (
    "prob",
    "log_prob",
    "level_vs_loud_db",
    "level_vs_floor_db",
    "duration_s",
    "snr_db",
    "prev_prob",
    "next_prob",
    "mean_prob",
    "no_speech_prob",
    "edge",
    "words_per_s",
    "chars",
    "log_prob_x_snr",
)
# A filter trained with this one more column needs the beam's n best hypotheses: the
# softmax-weighted share of them that contain each word of the best.
NBEST_FEATURE = "nbest_agreement"
NBEST = 5  # hypotheses such a filter asks the decoder for (beam at least as wide)
# A filter trained with these two more columns hears whose voice each word is in: the
# Resemblyzer embedding of a window around the word against the clip's loudest and quietest
# frames (the user near the microphone; the background talkers between the user's words).
SPEAKER_FEATURES = ("sim_talker", "sim_background")
SPEAKER_WINDOW = 80  # Resemblyzer mel frames (10 ms): 0.8 s centred on the word
FRAMES_PER_S = 100
TALKER_SHARE = 0.4  # the loudest 40% of the clip's frames stand for the user ...
BACKGROUND_SHARE = 0.3  # ... the quietest 30% for the background (fit on train, see docs)
MIN_REFERENCE_FRAMES = 20
RESEMBLYZER_DBFS = -30.0  # the level Resemblyzer's own preprocessing normalizes to
PROB_FLOOR = 1e-3  # log of a probability of 0 would be -inf


def word_features(
    words: Sequence[Word], audio: np.ndarray, no_speech_prob: float = 0.0
) -> np.ndarray:
    """One row of FEATURES per word of one transcript of ``audio`` (16 kHz mono)."""
    n = len(words)
    if n == 0:
        return np.zeros((0, len(FEATURES)))
    energy_db = 10 * np.log10(frame_energies(audio) + 1e-10)
    loud = float(np.percentile(energy_db, 95))
    floor = float(np.percentile(energy_db, 10))
    snr = float(np.clip(loud - floor, 0.0, 40.0)) if len(audio) >= 4 * LEVEL_FRAME else 30.0
    probs = np.array([w.probability for w in words], np.float64)
    log_probs = np.log(np.maximum(probs, PROB_FLOOR))
    levels = np.array([_level_db(energy_db, w.start, w.end) for w in words])
    duration = len(audio) / SAMPLE_RATE
    position = np.arange(n) / max(n - 1, 1)
    rows = np.column_stack(
        [
            probs,
            log_probs,
            np.clip(levels - loud, -40.0, 10.0),
            np.clip(levels - floor, -10.0, 50.0),
            np.clip([w.end - w.start for w in words], 0.0, 2.0),
            np.full(n, snr),
            np.concatenate([[1.0], probs[:-1]]),
            np.concatenate([probs[1:], [1.0]]),
            np.full(n, probs.mean()),
            np.full(n, no_speech_prob),
            np.abs(position - 0.5) * 2 if n > 1 else np.zeros(n),
            np.full(n, min(n / max(duration, 0.5), 8.0)),
            np.clip([len(w.word) for w in words], 0, 15),
            log_probs * snr / 20.0,
        ]
    )
    return rows


def nbest_agreement(words: Sequence[Word], alternatives: Sequence[tuple[str, float]]) -> np.ndarray:
    """For each word of the best hypothesis, the share of the n best ``alternatives`` (text,
    mean token log-probability; softmax weights) whose words include it (case and punctuation
    aside). 1 for every word without alternatives."""
    if len(alternatives) < 2:
        return np.ones(len(words))
    scores = np.array([score for _, score in alternatives], np.float64)
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    bags = [set(_bare(text)) for text, _ in alternatives]
    shares = []
    for word in words:
        tokens = _bare(word.word)  # "well-known" -> both halves must be there
        shares.append(
            sum(w for w, bag in zip(weights, bags, strict=True) if bag.issuperset(tokens))
        )
    return np.array(shares, np.float64)


def speaker_similarity(words: Sequence[Word], audio: np.ndarray) -> np.ndarray:
    """Per word, the cosine of the Resemblyzer embedding of SPEAKER_WINDOW frames centred on it
    with the embedding of the clip's loudest frames (the user) and of its quietest frames (the
    background talkers): an (n, 2) array in SPEAKER_FEATURES order. Needs ``duetto[safety]``."""
    import torch

    from duetto.safety.voiceprint import _encoder

    encoder = _encoder()  # first: it imports Resemblyzer quietly, or says which extra is missing
    from resemblyzer import audio as resemblyzer_audio

    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) or 1.0
    scaled = np.clip(audio * (10 ** (RESEMBLYZER_DBFS / 20) / rms), -1, 1).astype(np.float32)
    mel = resemblyzer_audio.wav_to_mel_spectrogram(scaled)  # (frames, 40), linear power
    order = np.argsort(mel.sum(axis=1))
    n_talker = max(int(TALKER_SHARE * len(mel)), MIN_REFERENCE_FRAMES)
    n_background = max(int(BACKGROUND_SHARE * len(mel)), MIN_REFERENCE_FRAMES)
    talker = mel[np.sort(order[-n_talker:])]
    background = mel[np.sort(order[:n_background])]
    if len(mel) < SPEAKER_WINDOW:
        mel = np.pad(mel, ((0, SPEAKER_WINDOW - len(mel)), (0, 0)))
    windows = []
    for w in words:
        centre = int(round((w.start + w.end) / 2 * FRAMES_PER_S))
        a = min(max(centre - SPEAKER_WINDOW // 2, 0), len(mel) - SPEAKER_WINDOW)
        windows.append(mel[a : a + SPEAKER_WINDOW])
    with torch.no_grad():
        embed = encoder(torch.from_numpy(np.stack(windows))).numpy().astype(np.float64)
        refs = [encoder(torch.from_numpy(r[None])).numpy()[0] for r in (talker, background)]
    refs = [r / (np.linalg.norm(r) + 1e-12) for r in refs]
    return np.column_stack([embed @ refs[0], embed @ refs[1]])


def feature_columns(nbest: bool = False, speaker: bool = False) -> tuple[str, ...]:
    """The columns of a filter trained with the optional cues, in order."""
    return FEATURES + ((NBEST_FEATURE,) if nbest else ()) + (SPEAKER_FEATURES if speaker else ())


def filter_features(
    words: Sequence[Word],
    audio: np.ndarray,
    no_speech_prob: float = 0.0,
    alternatives: Sequence[tuple[str, float]] = (),
    nbest: bool = False,
    speaker: bool = False,
) -> np.ndarray:
    """word_features and the optional cues' columns, in :func:`feature_columns` order."""
    features = word_features(words, audio, no_speech_prob)
    if nbest:
        features = np.column_stack([features, nbest_agreement(words, alternatives)])
    if speaker:
        features = np.column_stack([features, speaker_similarity(words, audio)])
    return features


def _bare(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return re.sub(r"[^\w' ]", " ", text.lower()).split()


def _level_db(energy_db: np.ndarray, start: float, end: float) -> float:
    """Mean frame power in dB over [start, end] (one frame at least)."""
    a = min(int(start * SAMPLE_RATE) // LEVEL_FRAME, len(energy_db) - 1)
    b = max(int(np.ceil(end * SAMPLE_RATE / LEVEL_FRAME)), a + 1)
    power = np.power(10.0, energy_db[a:b] / 10)
    return float(10 * np.log10(power.mean() + 1e-10))


def expand(z: np.ndarray, degree: int) -> np.ndarray:
    """Standardized features ``z`` (rows), with every pairwise product and square for degree 2."""
    if degree == 1:
        return z
    i, j = np.triu_indices(z.shape[1])
    return np.concatenate([z, z[:, i] * z[:, j]], axis=1)


class LearnedWordFilter:
    """Logistic regression over word_features (degree 2: and their pairwise products);
    ``keep`` says which words to keep."""

    def __init__(
        self,
        mean,
        scale,
        coef,
        bias: float,
        threshold: float,
        degree: int = 1,
        nbest: bool = False,
        speaker: bool = False,
    ):
        self.mean = np.asarray(mean, np.float64)
        self.scale = np.asarray(scale, np.float64)
        self.coef = np.asarray(coef, np.float64)
        self.bias = float(bias)
        self.threshold = float(threshold)
        self.degree = int(degree)
        self.nbest = bool(nbest)  # trained with NBEST_FEATURE: needs the n best hypotheses
        self.speaker = bool(speaker)  # trained with SPEAKER_FEATURES: needs Resemblyzer

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The columns this filter reads, in order."""
        return feature_columns(self.nbest, self.speaker)

    @classmethod
    def load(cls, spec: str = "learned") -> LearnedWordFilter:
        """``spec``: "learned" for the shipped weights, or a path to an npz of the same form."""
        return _load(str(SHIPPED if spec == "learned" else Path(spec).expanduser()))

    def save(self, path: str | Path) -> None:
        np.savez(
            path,
            features=np.array(self.feature_names),
            mean=self.mean,
            scale=self.scale,
            coef=self.coef,
            bias=np.float64(self.bias),
            threshold=np.float64(self.threshold),
            degree=np.int64(self.degree),
        )

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """P(the word is the target speaker's) for each row of ``features``."""
        z = expand((features - self.mean) / self.scale, self.degree) @ self.coef + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def keep(
        self,
        words: Sequence[Word],
        audio: np.ndarray,
        no_speech_prob: float = 0.0,
        threshold: float | None = None,
        alternatives: Sequence[tuple[str, float]] = (),
    ) -> np.ndarray:
        """A boolean per word: True to keep it (probability of being the user's >= threshold).
        ``alternatives``: the decoder's n best (text, score), for a filter that uses them."""
        if not words:
            return np.zeros(0, bool)
        cut = self.threshold if threshold is None else threshold
        features = filter_features(
            words, audio, no_speech_prob, alternatives, self.nbest, self.speaker
        )
        return self.probabilities(features) >= cut


@lru_cache(maxsize=4)
def _load(path: str) -> LearnedWordFilter:
    try:
        data = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise ModelNotFoundError(
            f"could not read word filter '{path}': {exc}",
            "use asr.word_filter='learned' or an npz written by bench/word_filter.py",
        ) from None
    names = tuple(str(f) for f in data["features"])
    nbest = NBEST_FEATURE in names
    speaker = SPEAKER_FEATURES[0] in names
    if names != feature_columns(nbest, speaker):
        raise ModelNotFoundError(
            f"word filter '{path}' was trained on other features",
            "retrain it with bench/word_filter.py",
        )
    degree = int(data["degree"]) if "degree" in data else 1
    return LearnedWordFilter(
        data["mean"],
        data["scale"],
        data["coef"],
        float(data["bias"]),
        float(data["threshold"]),
        degree,
        nbest,
        speaker,
    )
