"""Phone-level acoustic evidence from PocketSphinx: forced alignment and free phone decoding.

Two passes over the same audio give a GOP-like measure for each expected phone: the acoustic
log-likelihood of the frames under the phone the learner was asked to say (forced alignment)
against the best any phone sequence could do over those frames (a free phone loop). A phone
said well loses little to the free decoding; a wrong or missing phone loses a lot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from duetto.audio import SAMPLE_RATE, to_pcm16
from duetto.errors import MissingExtraError

FRAME_S = 0.01  # PocketSphinx analyses 100 frames per second
SILENCE = "SIL"
# Wide beams: alignment of poor learner speech must not fall off the search (the default
# beams make state alignment fail on accented or hesitant speech).
_ALIGN_BEAM = 1e-100
# Failed alignments are reported in the result, so PocketSphinx's own logging is kept to FATAL.
# Phone-loop decoding: a light phone language model weight so acoustics decide what was heard.
_PHONE_LM_WEIGHT = 2.0
_lock = threading.Lock()
_decoders: dict[str, object] = {}


@dataclass(frozen=True)
class AlignedPhone:
    phone: str  # ARPAbet without stress, as PocketSphinx names it
    start: int  # frame index
    frames: int
    score: int  # forced-alignment acoustic score (PocketSphinx log units)


@dataclass(frozen=True)
class AlignedWord:
    index: int  # position in the reference word list
    start: int
    frames: int
    phones: tuple[AlignedPhone, ...]


@dataclass(frozen=True)
class FreePhone:
    phone: str
    start: int
    end: int  # inclusive frame
    score: int  # acoustic score of the free phone-loop segment


@dataclass(frozen=True)
class Alignment:
    """Forced alignment of the reference phones plus the free phone decoding of the audio."""

    n_frames: int
    words: tuple[AlignedWord, ...]
    silences: tuple[tuple[int, int], ...]  # (start frame, frames) of silences between/around words
    free: tuple[FreePhone, ...]
    ok: bool  # False when the forced alignment failed (then ``words`` is empty)

    def free_frame_scores(self) -> np.ndarray:
        """Per-frame acoustic score of the free decoding (each segment spread evenly)."""
        out = np.zeros(self.n_frames, np.float64)
        for seg in self.free:
            lo, hi = max(seg.start, 0), min(seg.end + 1, self.n_frames)
            if hi > lo:
                out[lo:hi] = seg.score / (hi - lo)
        return out


def _pocketsphinx():
    try:
        import pocketsphinx
    except ImportError:
        raise MissingExtraError("pronunciation scoring (PocketSphinx)", "tutor") from None
    return pocketsphinx


def _decoder(kind: str):
    """One decoder per kind ('align' or 'free') per process; creating one costs ~0.2 s."""
    if kind not in _decoders:
        ps = _pocketsphinx()
        if kind == "align":
            _decoders[kind] = ps.Decoder(
                samprate=SAMPLE_RATE, lm=None, loglevel="FATAL", beam=_ALIGN_BEAM,
                pbeam=_ALIGN_BEAM, bestpath=False, cmn="batch",
            )  # fmt: skip
        else:
            _decoders[kind] = ps.Decoder(
                samprate=SAMPLE_RATE, lm=None, loglevel="FATAL", cmn="batch",
                allphone=ps.get_model_path("en-us/en-us-phone.lm.bin"), lw=_PHONE_LM_WEIGHT,
                bestpath=False,
            )  # fmt: skip
    return _decoders[kind]


def known_phones() -> frozenset[str]:
    """The phones of the bundled acoustic model (ARPAbet without stress)."""
    return frozenset(PHONES)


# The 39 CMU phones of the bundled en-US model.
PHONES = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
    "UH UW V W Y Z ZH"
).split()


def align(audio: np.ndarray, pronunciations: list[list[str]]) -> Alignment:
    """Align ``pronunciations`` (one phone list per reference word) to 16 kHz ``audio``.

    Never raises for speech that does not fit the text: a failed alignment comes back with
    ``ok=False`` and no words, so callers can score the utterance as incomplete.
    """
    pcm = to_pcm16(audio)
    n_frames = max(1, len(audio) * 100 // SAMPLE_RATE)
    with _lock:
        free = _free_phones(pcm)
        words, silences, ok = _forced(pcm, pronunciations)
    return Alignment(n_frames=n_frames, words=words, silences=silences, free=free, ok=ok)


def _decode(decoder, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _free_phones(pcm: bytes) -> tuple[FreePhone, ...]:
    decoder = _decoder("free")
    logmath = decoder.get_logmath()
    try:
        _decode(decoder, pcm)
    except RuntimeError:
        return ()
    out = []
    for seg in decoder.seg():
        score = logmath.log(seg.ascore) if seg.ascore > 0 else -(10**6)
        out.append(FreePhone(seg.word, seg.start_frame, seg.end_frame, int(score)))
    return tuple(out)


def _forced(pcm: bytes, pronunciations: list[list[str]]):
    decoder = _decoder("align")
    # A dictionary word per distinct pronunciation ("_K_AO_L"): the decoder cannot redefine a
    # word, and naming words by their phones makes every pronunciation reusable.
    names = ["_" + "_".join(phones) for phones in pronunciations if phones]
    fresh = [n for n in dict.fromkeys(names) if decoder.lookup_word(n) is None]
    for i, name in enumerate(fresh):
        decoder.add_word(name, " ".join(name[1:].split("_")), update=(i == len(fresh) - 1))
    if not names:
        return (), (), False
    try:
        decoder.set_align_text(" ".join(names))
        _decode(decoder, pcm)
        decoder.set_alignment()
        _decode(decoder, pcm)
        result = decoder.get_alignment()
    except RuntimeError:
        return (), (), False
    if result is None:
        return (), (), False
    words, silences = [], []
    spoken = [i for i, phones in enumerate(pronunciations) if phones]
    for entry in result.words():
        if entry.name.startswith("_") and len(words) < len(spoken):
            phones = tuple(AlignedPhone(p.name, p.start, p.duration, p.score) for p in entry)
            words.append(AlignedWord(spoken[len(words)], entry.start, entry.duration, phones))
        elif entry.duration > 0:
            silences.append((entry.start, entry.duration))
    return tuple(words), tuple(silences), len(words) == len(names)
