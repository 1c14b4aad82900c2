"""Pronunciation assessment of one recording against the sentence the learner read.

    scorer = Scorer()
    result = scorer.score(load_audio("take.wav"), "The sentence the learner read")
    result.utterance.total, result.words[0].miscue, result.tips

Phone scores are 0-2 like the human labels (0 wrong or missing, 1 accented, 2 correct), word
and utterance scores 0-10. With ``text=None`` the ASR transcript becomes the reference.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from duetto.apps.tutor import features, lexicon
from duetto.apps.tutor.evidence import Evidence, gather, normalise_word
from duetto.apps.tutor.gopt import load_gopt
from duetto.apps.tutor.model import load_scorers
from duetto.apps.tutor.tips import show, tip
from duetto.apps.tutor.whisper_evidence import (
    WhisperEvidence,
    encoder_states,
    gather_whisper,
    transcribe_short,
)
from duetto.apps.tutor.whisper_layers import truncated_model
from duetto.audio import SAMPLE_RATE
from duetto.errors import DuettoError, EmptyAudioError, NoSpeechError

# A word scored below this (0-10) is a mispronunciation; Azure's assessment uses 60 of 100.
MISPRONOUNCED_BELOW = 6.0
# Without a threshold in the weights file, a phone scored below this (0-2) is mispronounced.
# The shipped weights carry the F1-best cut against the human labels on train (see model.py).
PHONE_ERROR_BELOW = 1.5
# Phones scored this far below the mispronunciation threshold are labelled 0 (wrong/missing).
WRONG_MARGIN = 0.5
# A word is omitted when its phones average below this (0-2) and the ASR did not hear it.
OMITTED_BELOW = 0.9
# Whisper's probability for a reference word forced on the audio, under which a word the ASR
# did not hear either counts as not said (for well-read words it is mostly above 0.5).
NOT_SAID_PROB = 0.02
# Loudness under which a recording holds no speech at all (about -60 dBFS).
SILENT_RMS = 1e-3
# Longer recordings are refused: Whisper's encoder sees 30 s at most, and one sentence is shorter.
MAX_SECONDS = 30.0
TIPS = 2
SCORERS = ("ridge", "gopt")
# The transformer blend: better than the ridge alone on dev (docs/tutor.md, "Measured").
DEFAULT_SCORER = "gopt"
# The second encoder weights trained with ``bench/tutor_train.py --base`` read.
BASE_ASR_MODEL = "bundled-base"


class InvalidTextError(DuettoError):
    """The reference text has no words to score."""

    code = "invalid_text"


@dataclass(frozen=True)
class PhoneScore:
    expected: str  # ARPAbet
    heard: str  # the phone the free decoding heard there ("-" for nothing)
    score: float  # 0-2
    label: int  # 0 wrong or missing, 1 accented, 2 correct
    start: float
    end: float


@dataclass(frozen=True)
class WordScore:
    word: str
    accuracy: float | None  # 0-10 (None for an inserted word)
    stress: float | None
    miscue: str  # none, mispronunciation, omission, insertion
    start: float
    end: float
    phones: tuple[PhoneScore, ...]
    source: str  # where the expected phones came from: lexicon, cmudict, espeak, rules, asr


@dataclass(frozen=True)
class UtteranceScore:
    accuracy: float
    completeness: float
    fluency: float
    prosody: float
    total: float


@dataclass(frozen=True)
class Fluency:
    words_per_minute: float
    phones_per_second: float
    pause_count: int
    pause_seconds: float
    longest_pause: float


@dataclass(frozen=True)
class Tip:
    phone: str
    word: str
    heard: str
    score: float
    text: str


@dataclass(frozen=True)
class Assessment:
    reference: str
    transcript: str
    words: tuple[WordScore, ...]
    utterance: UtteranceScore
    fluency: Fluency
    tips: tuple[Tip, ...]
    warnings: tuple[str, ...]
    duration: float
    seconds: float  # wall time spent scoring

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def phones(self) -> list[PhoneScore]:
        return [p for w in self.words for p in w.phones]


class Scorer:
    """Loads the acoustic models and trained scorers once; scores many recordings."""

    def __init__(
        self,
        *,
        lexicon_path: str | Path | None = None,
        asr=None,
        weights: str | None = None,
        scorer: str = DEFAULT_SCORER,
        gopt_weights: str | None = None,
    ):
        """``scorer``: "ridge" (one ridge model per level) or "gopt" (a small transformer over
        the utterance's phones, blended with the ridge; weights in ``weights/gopt.npz``)."""
        if scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {SCORERS}, not {scorer!r}")
        self.lexicon_path = lexicon_path
        self.models = load_scorers(weights)
        self.gopt = load_gopt(gopt_weights) if scorer == "gopt" else None
        self.threshold = float(self.models.get("threshold", PHONE_ERROR_BELOW))
        if self.gopt is not None and self.gopt.threshold is not None:
            self.threshold = self.gopt.threshold  # chosen on the blended scores
        self._asr = asr
        self._base_asr = None

    @property
    def asr(self):
        if self._asr is None:
            from duetto.asr import load_asr

            self._asr = load_asr()
        return self._asr

    @property
    def uses_base(self) -> bool:
        """Whether the weights read Whisper base encoder states (a second encoder per call)."""
        return self.models.get("base_gop") is not None

    @property
    def base_layer(self) -> int:
        """The Whisper base encoder layer the weights read (0: the last)."""
        return int(self.models.get("base_layer", 0))

    @property
    def base_asr(self):
        """Whisper base, cut after :attr:`base_layer` encoder layers when the weights read a
        middle layer (the cut copy is built once into duetto's cache)."""
        if self._base_asr is None:
            from duetto.asr import load_asr
            from duetto.config import ASRSettings
            from duetto.models import whisper_model

            model = BASE_ASR_MODEL
            if self.base_layer:
                model = str(truncated_model(whisper_model(BASE_ASR_MODEL), self.base_layer))
            self._base_asr = load_asr(ASRSettings(model=model))
        return self._base_asr

    def score(self, audio: np.ndarray, text: str | None) -> Assessment:
        """Score ``audio`` (16 kHz mono float32) read from ``text`` (``None``: free speech)."""
        started = time.perf_counter()
        audio = np.asarray(audio, np.float32)
        if len(audio) == 0:
            raise EmptyAudioError("the recording is empty", "record the sentence again")
        duration = len(audio) / SAMPLE_RATE
        if duration > MAX_SECONDS:
            raise DuettoError(
                f"the recording is {duration:.0f} s long; the tutor scores up to {MAX_SECONDS:.0f} s",
                "record one sentence at a time",
            )
        if float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) < SILENT_RMS:
            raise NoSpeechError(
                "the recording is silent", "check the microphone and read the sentence aloud"
            )
        warnings = []
        # one tiny.en encoding serves the transcript and the Whisper evidence
        encoded = encoder_states(self.asr, audio)
        heard = transcribe_short(self.asr, audio, encoded)
        if text is None:
            text = heard[1]
            if not lexicon.words_of(text):
                raise NoSpeechError(
                    "no words were recognised in the recording", "speak clearly and try again"
                )
        words = lexicon.words_of(text)
        if not words:
            raise InvalidTextError(
                f"the reference text {text!r} has no words", "give the sentence the learner read"
            )
        prons = lexicon.pronounce(words, self.lexicon_path)
        for p in prons:
            if p.source in ("espeak", "rules"):
                warnings.append(
                    f"'{p.word.lower()}' is not in the lexicon; its phones were guessed ({p.source})"
                )
        ev = gather(audio, words, [list(p.phones) for p in prons], asr=None)
        ev = replace(ev, asr_words=heard[0], asr_text=heard[1], asr_logprob=heard[2])
        wev = self.whisper_evidence(audio, words, encoded)
        if not ev.alignment.ok:
            warnings.append(
                "the audio could not be aligned with the text: does the recording match it?"
            )
        return self._assess(ev, wev, text, prons, warnings, started)

    def whisper_evidence(
        self, audio: np.ndarray, words: list[str], encoded=None
    ) -> WhisperEvidence:
        """Whisper tiny.en states and token odds, and Whisper base states if the weights read them
        (``encoded``: the tiny.en encoding of ``audio`` if already computed)."""
        wev = gather_whisper(self.asr, audio, words, encoded)
        if self.uses_base:
            wev = replace(wev, base_states=encoder_states(self.base_asr, audio)[0])
        return wev

    def phone_inputs(self, ev: Evidence, wev: WhisperEvidence):
        """(phone evidence, phone feature rows) as the trained scorers see them."""
        pe = features.phone_evidence(ev)
        x = features.phone_features(ev, pe, wev)
        if self.models.get("prototypes") is not None:
            x = np.concatenate(
                [
                    x,
                    features.prototype_features(
                        x, [p.expected for p in pe], self.models["prototypes"]
                    ),
                ],
                axis=1,
            )
        gop = self.models.get("gop")
        if gop is not None:
            logp = features.classifier_log_posteriors(features.phone_states(x), gop)
            x = np.concatenate([x, features.gop_features(logp, pe, gop["norm"])], axis=1)
        base = self.models.get("base_gop")
        if base is not None:
            states = features.base_pooled(wev, pe)
            logp = features.classifier_log_posteriors(states, base)
            x = np.concatenate([x, features.gop_features(logp, pe, base["norm"])], axis=1)
        return pe, x

    def predict(self, ev: Evidence, wev: WhisperEvidence):
        """Phone, word and utterance predictions (numpy) from evidence; used by the benchmark."""
        if not self.models["asr"]:  # trained without ASR evidence: show it none
            ev = replace(ev, asr_words=(), asr_text="", asr_logprob=0.0)
        pe, x = self.phone_inputs(ev, wev)
        phone, word, utt, utt_x = self._ridge(ev, wev, pe, x)
        if self.gopt is not None:
            phone, word, utt = self.gopt.predict(x, pe, phone, word, utt, utt_x)
        return pe, phone, word, utt

    def _ridge(self, ev, wev, pe, x):
        phone = self.models["phone"].predict(x)[:, 0] if len(x) else np.zeros(0)
        word = self.models["word"].predict(features.word_features(ev, pe, phone, wev))
        utt_x = features.utterance_features(ev, pe, phone, word[:, 0], wev)
        utt = self.models["utterance"].predict(utt_x[None, :])[0]
        return phone, word, utt, utt_x

    def _assess(
        self, ev: Evidence, wev: WhisperEvidence, text: str, prons, warnings, started
    ) -> Assessment:
        pe, phone_pred, word_pred, utt_pred = self.predict(ev, wev)
        asr_match = features.asr_word_match(ev)  # used for miscues whatever the scorer saw
        words = []
        for wi, pron in enumerate(prons):
            idx = [k for k, p in enumerate(pe) if p.word == wi]
            phones = tuple(
                PhoneScore(
                    pe[k].expected,
                    pe[k].heard,
                    round(float(phone_pred[k]), 2),
                    _label(phone_pred[k], self.threshold),
                    round(pe[k].start, 2),
                    round(pe[k].end, 2),
                )  # fmt: skip
                for k in idx
            )
            acc, stress = float(word_pred[wi, 0]), float(word_pred[wi, 1])
            mean_phone = float(np.mean(phone_pred[idx])) if idx else 0.0
            aligned = all(pe[k].aligned for k in idx) and bool(idx)
            forced = (
                wev.word_probs[wi] if wi < len(wev.word_probs) and wev.word_probs[wi] else (0.0,)
            )
            unheard = asr_match[wi] == 0.0 and (
                mean_phone < OMITTED_BELOW or float(np.mean(forced)) < NOT_SAID_PROB
            )
            if not aligned or unheard:
                miscue = "omission"
                acc = 0.0  # nothing of the word was said
            elif acc < MISPRONOUNCED_BELOW:
                miscue = "mispronunciation"
            else:
                miscue = "none"
            words.append(
                WordScore(
                    pron.word,
                    round(acc, 1),
                    round(stress, 1),
                    miscue,
                    phones[0].start if phones else 0.0,
                    phones[-1].end if phones else 0.0,
                    phones,
                    pron.source,
                )  # fmt: skip
            )
        words = _with_insertions(words, ev)
        present = [w for w in words if w.miscue not in ("omission", "insertion")]
        completeness = 10.0 * len(present) / max(len(prons), 1)
        scale = min(completeness / 10.0, 1.0)
        # The trained scorer saw almost only complete readings (completeness is 10 for 97% of
        # the corpus), so missing words scale the scores down explicitly.
        utterance = UtteranceScore(
            accuracy=round(float(utt_pred[0]) * scale, 1),
            completeness=round(completeness, 1),
            fluency=round(float(utt_pred[2]) * (0.5 + 0.5 * scale), 1),
            prosody=round(float(utt_pred[3]) * (0.5 + 0.5 * scale), 1),
            total=round(float(utt_pred[4]) * scale, 1),
        )
        return Assessment(
            reference=text, transcript=ev.asr_text, words=tuple(words), utterance=utterance,
            fluency=_fluency(ev, pe, len(prons)), tips=_tips(words), warnings=tuple(warnings),
            duration=round(ev.duration, 2), seconds=round(time.perf_counter() - started, 3),
        )  # fmt: skip


def _label(score: float, threshold: float) -> int:
    return 2 if score >= threshold else (1 if score >= threshold - WRONG_MARGIN else 0)


def _with_insertions(words: list[WordScore], ev: Evidence) -> list[WordScore]:
    """ASR words between reference words that match none of them become insertions."""
    heard = [features.DIGITS.get(w.word, w.word) for w in ev.asr_words]
    ref = [w.word for w in words]
    matcher = difflib.SequenceMatcher(a=ref, b=heard, autojunk=False)
    out = list(words)
    offset = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        extra = j2 - j1 - (i2 - i1) if tag == "replace" else (j2 - j1 if tag == "insert" else 0)
        for j in range(j2 - extra, j2) if extra > 0 else ():
            w = ev.asr_words[j]
            out.insert(i2 + offset, WordScore(normalise_word(w.word), None, None, "insertion",
                                              round(w.start, 2), round(w.end, 2), (), "asr"))  # fmt: skip
            offset += 1
    return out


def _fluency(ev: Evidence, pe, n_words: int) -> Fluency:
    aligned = [p for p in pe if p.aligned]
    span = (aligned[-1].end - aligned[0].start) if aligned else 0.0
    ps = features.pauses(ev)
    speech = max(span - sum(d for _, d in ps), 1e-6)
    return Fluency(
        words_per_minute=round(60.0 * n_words / span, 1) if span > 0 else 0.0,
        phones_per_second=round(len(aligned) / speech, 2) if aligned else 0.0,
        pause_count=len(ps),
        pause_seconds=round(sum(d for _, d in ps), 2),
        longest_pause=round(max((d for _, d in ps), default=0.0), 2),
    )


def _tips(words: list[WordScore]) -> tuple[Tip, ...]:
    candidates = [(p, w) for w in words if w.miscue != "insertion" for p in w.phones]
    candidates.sort(key=lambda pw: pw[0].score)
    out, seen = [], set()
    for p, w in candidates:
        if p.label == 2 or p.expected in seen:
            continue
        seen.add(p.expected)
        out.append(Tip(show(p.expected), w.word, show(p.heard) if p.heard != "-" else "-", p.score,
                       tip(p.expected, p.heard, w.word)))  # fmt: skip
        if len(out) == TIPS:
            break
    return tuple(out)
