"""Forced alignment of a known text to audio: words and phones with start/end times.

Backed by PocketSphinx (BSD licence), which ships the CMU en-US acoustic model and the CMU
pronouncing dictionary: the text is turned into a word graph with optional silences and the
decoder finds the best path through it, then a second pass aligns phones inside the words.
Words missing from the dictionary get a rough letter-to-sound pronunciation (marked ``oov``).

Outputs: JSON (:meth:`Alignment.to_dict`), Praat TextGrid (:func:`to_textgrid`) and SRT
(:func:`to_srt`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from duetto.audio import SAMPLE_RATE, to_pcm16
from duetto.errors import DuettoError, MissingExtraError

FRAME_S = 0.01  # PocketSphinx works in 10 ms frames
# Silence added around the audio when the first try fails (see Aligner.align).
RETRY_PAD_S = 0.2
# Frames quieter than this below the loudest frame count as silence at the utterance edges.
EDGE_DB = 40
SILENCE_WORDS = ("<sil>", "<s>", "</s>")
# SRT cues: break a phrase at pauses this long, or after this many words / seconds.
SRT_PAUSE_S = 0.3
SRT_MAX_WORDS = 7
SRT_MAX_S = 3.5


@dataclass(frozen=True)
class Phone:
    phone: str
    start: float
    end: float


@dataclass(frozen=True)
class AlignedWord:
    word: str
    start: float
    end: float
    phones: tuple[Phone, ...] = ()
    oov: bool = False  # pronounced by letter-to-sound rules, not from the dictionary


@dataclass(frozen=True)
class Alignment:
    words: tuple[AlignedWord, ...]
    duration: float

    def to_dict(self) -> dict:
        return {
            "duration": round(self.duration, 3),
            "words": [
                {
                    "word": w.word,
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    **({"oov": True} if w.oov else {}),
                    "phones": [
                        {"phone": p.phone, "start": round(p.start, 3), "end": round(p.end, 3)}
                        for p in w.phones
                    ],
                }
                for w in self.words
            ],
        }


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spoken_number(n: int) -> str:
    """English words for 0 <= n < 10**9 ("twenty five", "three hundred one")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{spoken_number(head)} {name}" + (f" {spoken_number(rest)}" if rest else "")
    raise AssertionError(n)


def text_words(text: str) -> list[str]:
    """The words to align: lower case, digits spoken, punctuation dropped (apostrophes kept)."""
    s = text.lower().replace("\u2019", "'").replace("-", " ")
    s = re.sub(
        r"\d+", lambda m: f" {spoken_number(int(m.group()))} " if len(m.group()) < 10 else " ", s
    )
    s = re.sub(r"[^a-z' ]+", " ", s)
    return [w.strip("'") for w in s.split() if w.strip("'")]


# Crude letter-to-sound rules for words missing from the dictionary, longest match first. They
# only need to give the decoder a plausible phone count and class so neighbours align well.
_LTS = [
    ("tion", "SH AH N"), ("ough", "AO"), ("igh", "AY"), ("sch", "S K"), ("tch", "CH"),
    ("sh", "SH"), ("ch", "CH"), ("th", "TH"), ("ph", "F"), ("ng", "NG"), ("ck", "K"), ("qu", "K W"),
    ("wh", "W"), ("ee", "IY"), ("ea", "IY"), ("oo", "UW"), ("ou", "AW"), ("ow", "OW"), ("oi", "OY"),
    ("oy", "OY"), ("ai", "EY"), ("ay", "EY"), ("au", "AO"), ("aw", "AO"), ("ie", "IY"), ("ey", "IY"),
    ("a", "AE"), ("b", "B"), ("c", "K"), ("d", "D"), ("e", "EH"), ("f", "F"), ("g", "G"), ("h", "HH"),
    ("i", "IH"), ("j", "JH"), ("k", "K"), ("l", "L"), ("m", "M"), ("n", "N"), ("o", "AA"), ("p", "P"),
    ("q", "K"), ("r", "R"), ("s", "S"), ("t", "T"), ("u", "AH"), ("v", "V"), ("w", "W"), ("x", "K S"),
    ("y", "Y"), ("z", "Z"), ("'", ""),
]  # fmt: skip


def letter_to_sound(word: str) -> str:
    """A rough CMU-phone pronunciation of ``word`` (doubled letters read once)."""
    phones: list[str] = []
    i = 0
    while i < len(word):
        for graph, ph in _LTS:
            if word.startswith(graph, i):
                for p in ph.split():
                    if not phones or phones[-1] != p:
                        phones.append(p)
                i += len(graph)
                break
        else:
            i += 1
    return " ".join(phones) or "AH"


class Aligner:
    """A loaded PocketSphinx decoder; reuse one for many alignments (loading takes ~1 s)."""

    def __init__(self):
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise MissingExtraError("forced alignment", "data") from None
        # Batch CMN: normalize over the whole clip, so a result does not depend on what the
        # decoder heard before (live CMN adapts across utterances).
        self.decoder = Decoder(loglevel="FATAL", cmn="batch")

    def align(self, audio: np.ndarray, text: str) -> Alignment:
        """Align ``text`` to 16 kHz mono ``audio``.

        Raises :class:`DuettoError` when the text has no words or the decoder finds no path
        (the audio does not contain the text, or is too short for it).
        """
        words = text_words(text)
        if not words:
            raise DuettoError(
                "the text to align holds no words",
                'pass the words spoken, e.g. --text "hello there"',
            )
        duration = len(audio) / SAMPLE_RATE
        if duration < 0.1 * len(words) / 3:
            count = f"{len(words)} word{'s' if len(words) > 1 else ''}"
            raise DuettoError(f"{duration:.2f} s of audio is too short for {count}")
        oov = {w for w in words if self.decoder.lookup_word(w) is None}
        for w in oov:
            self.decoder.add_word(w, letter_to_sound(w), True)
        try:
            result, offset = self._decode(audio, words), 0.0
        except DuettoError:
            # The phone pass fails now and then when speech fills the clip to its edges (no
            # room for the silence models): retry with a little silence around it.
            pad = np.zeros(int(RETRY_PAD_S * SAMPLE_RATE), np.float32)
            result, offset = self._decode(np.concatenate([pad, audio, pad]), words), RETRY_PAD_S
        out = []
        for entry in result:
            name = re.sub(r"\(\d+\)$", "", entry.name)
            if name in SILENCE_WORDS or name.startswith("["):
                continue
            phones = tuple(
                Phone(p.name, *_span(p.start, p.duration, offset, duration))
                for p in entry
                if p.name != "SIL"
            )
            span = _span(entry.start, entry.duration, offset, duration)
            out.append(AlignedWord(name, *span, phones, name in oov))
        return Alignment(tuple(_refine_edges(out, audio)), duration)

    def _decode(self, audio: np.ndarray, words: list[str]):
        """Word pass then phone pass over ``audio``; the decoder's alignment object."""
        pcm = to_pcm16(audio)
        d = self.decoder
        try:
            d.set_align_text(" ".join(words))
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            if d.hyp() is None:
                raise DuettoError(
                    "alignment failed: the audio does not seem to contain the text",
                    "check the text and the audio file",
                )
            d.set_alignment()
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            result = d.get_alignment()
        except RuntimeError as exc:
            raise DuettoError(
                f"alignment failed: {exc}", "check the text matches the audio"
            ) from None
        if result is None:
            raise DuettoError(
                "alignment failed: no path through the text", "check the text matches the audio"
            )
        return result


def _span(start: int, frames: int, offset: float, duration: float) -> tuple[float, float]:
    """Frame index and count to seconds of the original audio (clipped to it)."""
    a = min(max(start * FRAME_S - offset, 0.0), duration)
    b = min(max((start + frames) * FRAME_S - offset, 0.0), duration)
    return round(a, 3), round(b, 3)


def _refine_edges(words: list[AlignedWord], audio: np.ndarray) -> list[AlignedWord]:
    """Move the first start / last end onto where sound begins / ends.

    The acoustic model needs a few frames to call something silence, so a short lead-in is
    otherwise given to the first word (and a short tail to the last).
    """
    if not words:
        return words
    hop = int(FRAME_S * SAMPLE_RATE)
    n = len(audio) // hop
    if n == 0:
        return words
    energy = np.square(audio[: n * hop].reshape(n, hop), dtype=np.float64).mean(axis=1)
    level = 10 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(level > level.max() - EDGE_DB)
    first_sound, last_sound = float(loud[0] * FRAME_S), float((loud[-1] + 1) * FRAME_S)
    w0, w1 = words[0], words[-1]
    if w0.start < first_sound < w0.end:
        phones = w0.phones
        if phones and phones[0].end > first_sound:
            phones = (Phone(phones[0].phone, first_sound, phones[0].end), *phones[1:])
        words[0] = AlignedWord(w0.word, first_sound, w0.end, phones, w0.oov)
    w1 = words[-1]
    if w1.start < last_sound < w1.end:
        phones = w1.phones
        if phones and phones[-1].start < last_sound:
            phones = (*phones[:-1], Phone(phones[-1].phone, phones[-1].start, last_sound))
        words[-1] = AlignedWord(w1.word, w1.start, last_sound, phones, w1.oov)
    return words


@cache
def default_aligner() -> Aligner:
    return Aligner()


def align(audio: np.ndarray, text: str) -> Alignment:
    """Forced alignment with a shared :class:`Aligner` (see :meth:`Aligner.align`)."""
    return default_aligner().align(audio, text)


def to_textgrid(alignment: Alignment, path: str | Path | None = None) -> str:
    """Praat TextGrid (long text format) with "words" and "phones" tiers; gaps become empty
    intervals, as Praat expects tiers to cover the whole file."""
    words = [(w.start, w.end, w.word) for w in alignment.words]
    phones = [(p.start, p.end, p.phone) for w in alignment.words for p in w.phones]
    tiers = [
        ("words", _fill_gaps(words, alignment.duration)),
        ("phones", _fill_gaps(phones, alignment.duration)),
    ]
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0",
        f"xmax = {alignment.duration:.3f}",
        "tiers? <exists>",
        f"size = {len(tiers)}",
        "item []:",
    ]
    for i, (name, intervals) in enumerate(tiers, 1):
        lines += [
            f"    item [{i}]:",
            '        class = "IntervalTier"',
            f'        name = "{name}"',
            "        xmin = 0",
            f"        xmax = {alignment.duration:.3f}",
            f"        intervals: size = {len(intervals)}",
        ]
        for j, (start, end, label) in enumerate(intervals, 1):
            label = label.replace('"', '""')
            lines += [
                f"        intervals [{j}]:",
                f"            xmin = {start:.3f}",
                f"            xmax = {end:.3f}",
                f'            text = "{label}"',
            ]
    text = "\n".join(lines) + "\n"
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def _fill_gaps(
    intervals: list[tuple[float, float, str]], duration: float
) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    t = 0.0
    for start, end, label in intervals:
        start = max(start, t)
        if start - t > 1e-6:
            out.append((t, start, ""))
        if end > start:
            out.append((start, end, label))
            t = end
    if duration - t > 1e-6:
        out.append((t, duration, ""))
    return out


def to_srt(alignment: Alignment, path: str | Path | None = None) -> str:
    """SRT subtitles: phrases split at pauses of ``SRT_PAUSE_S`` or at the length limits."""
    cues: list[list[AlignedWord]] = []
    for w in alignment.words:
        if (
            cues
            and w.start - cues[-1][-1].end < SRT_PAUSE_S
            and len(cues[-1]) < SRT_MAX_WORDS
            and w.end - cues[-1][0].start <= SRT_MAX_S
        ):
            cues[-1].append(w)
        else:
            cues.append([w])
    blocks = [
        f"{i}\n{_srt_time(c[0].start)} --> {_srt_time(c[-1].end)}\n{' '.join(w.word for w in c)}\n"
        for i, c in enumerate(cues, 1)
    ]
    text = "\n".join(blocks)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def _srt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"
