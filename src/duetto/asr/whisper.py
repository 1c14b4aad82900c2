"""faster-whisper backend (CTranslate2): the bundled tiny.en by default, any model by name/path."""

from __future__ import annotations

import difflib
import re
import threading
import time
import zlib
from dataclasses import replace

import numpy as np

from duetto.asr import Segment, Transcription
from duetto.asr.word_filter import NBEST, LearnedWordFilter
from duetto.audio import LEVEL_FRAME, SAMPLE_RATE, frame_energies
from duetto.config import ASRSettings, auto_threads
from duetto.errors import ConfigError, ModelNotFoundError
from duetto.frames import Word
from duetto.models import whisper_model

# Whisper's encoder sees 30 s windows (3000 mel frames of 10 ms).
FULL_WINDOW_FRAMES = 3000
MAX_TRIMMED_S = 29.0
TRIM_PAD = SAMPLE_RATE  # one second of silence after the speech, as in training windows
# Shorter windows than this make Whisper loop on its sentence. Chosen on speechocean762 *train*
# (80 utterances; WER 6 s: 44.9%, 10 s: 34.0%, 14 s: 34.5%, the standard 30 s: 37.0%).
MIN_WINDOW_S = 10.0
# Fast English speech is about 4 words (~6 tokens) a second; the cap stops runaway repetition.
MAX_TOKENS_PER_S = 12
NO_REPEAT_NGRAM = 4
# Whisper's own repetition test: a transcript compressing better than 2.4:1 is a loop; the loop
# guard decodes it again at these temperatures until it is not.
MAX_COMPRESSION_RATIO = 2.4
FALLBACK_TEMPERATURES = (0.2, 0.4, 0.6, 0.8)
LOOP_GUARD_SEED = 0
ENCODER_FRAME_S = 0.02  # one encoder position: two 10 ms mel frames
# Whisper's decoder holds 448 positions; like Whisper, keep at most half of them for the prompt.
MAX_PROMPT_TOKENS = 223
# What estimated_snr reports for a clip too short to measure: clean (no noise to speak of).
SNR_CLEAN_DB = 30.0
# Hypotheses the beam keeps per speed for asr.noisy_lm to choose among (the best and four more).
LM_NBEST = 5
# Two sentences in a row this alike (difflib ratio over words) are one said twice by a loop.
REPEAT_SIMILARITY = 0.75


class WhisperASR:
    def __init__(self, settings: ASRSettings):
        from faster_whisper import WhisperModel

        self.settings = settings
        started = time.perf_counter()
        try:
            self.model = WhisperModel(
                whisper_model(settings.model),
                device="cpu",
                compute_type=settings.compute_type,
                cpu_threads=auto_threads(settings.threads),
            )
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelNotFoundError(
                f"could not load ASR model '{settings.model}': {exc}",
                "give a local CTranslate2 folder or 'bundled' when offline",
            ) from None
        self.load_seconds = time.perf_counter() - started
        self.multilingual = self.model.model.is_multilingual
        self.word_filter = (
            LearnedWordFilter.load(settings.word_filter) if settings.word_filter else None
        )
        self.noisy_speeds = noisy_speeds(settings.noisy_speeds)
        self.noisy_lm = None
        self._lm_lock = threading.Lock()
        if settings.noisy_lm:
            from duetto.llm.scoring import GemmaScorer

            self._require_speeds("noisy_lm")
            try:
                self.noisy_lm = GemmaScorer(
                    settings.noisy_lm, threads=settings.threads, purpose="asr.noisy_lm"
                )
            except ModelNotFoundError as exc:
                raise ModelNotFoundError(
                    f"asr.noisy_lm: {exc.message}", "give a .gguf file or 'bundled'"
                ) from None
        self.second = None
        if settings.noisy_second_model:
            self._require_speeds("noisy_second_model")
            if settings.noisy_lm:
                raise ConfigError(
                    "asr.noisy_second_model and asr.noisy_lm cannot be combined: the language "
                    "model's weights were set for one model's decodings",
                    "set one of them",
                )
            try:
                self.second = WhisperASR(
                    replace(settings, model=settings.noisy_second_model, noisy_second_model=None)
                )
            except ModelNotFoundError as exc:
                raise ModelNotFoundError(
                    f"asr.noisy_second_model: {exc.message}", exc.hint
                ) from None

    def _require_speeds(self, setting: str) -> None:
        """Refuse ``asr.<setting>`` where no audio would be decoded at several speeds."""
        if not self.noisy_speeds or self.settings.filter_below_snr_db is None:
            raise ConfigError(
                f"asr.{setting} works on the decodings of asr.noisy_speeds, which only noisy "
                "audio (under asr.filter_below_snr_db) gets",
                "set asr.noisy_speeds (e.g. [0.95, 1.05, 0.9, 1.1]) and asr.filter_below_snr_db",
            )

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        words: bool = False,
        prompt: str | None = None,
        language: str | None = None,
        temperature: float = 0.0,
        nbest: int | None = None,
        beam_size: int | None = None,
        partial: bool = False,
    ) -> Transcription:
        """Transcribe 16 kHz float32 mono ``audio``. ``prompt`` replaces ``settings.prompt``
        ("" for none), ``beam_size`` replaces ``settings.beam_size``. ``nbest`` (default
        ``settings.nbest``) > 1 also returns that many best
        hypotheses of the same beam search (beam at least ``nbest``) as ``alternatives``, on the
        trimmed window only (none with ``words`` or audio over MAX_TRIMMED_S); 1 for none, as a
        partial transcript asks. With ``settings.loop_guard`` a repetition loop is decoded again
        at rising temperature; with a word filter set, the unlikely or quiet words are dropped
        (their text too): on the trimmed window the transcript's words are aligned for that
        (cheap), unless the caller asked for ``words``, which always come from faster-whisper's
        standard path. ``settings.word_filter`` adds the learned filter (duetto.asr.word_filter).
        With ``settings.filter_below_snr_db`` the filters skip audio estimated cleaner than it,
        and audio under it is decoded with ``settings.noisy_beam_size`` when that is set (a
        ``beam_size`` given here wins) and, with ``settings.noisy_speeds``, again at each of
        those speeds, the medoid of the decodings returned (not for ``words`` or ``nbest``), or
        with ``settings.noisy_lm`` the candidate :func:`lm_choice` picks (audio up to
        MAX_TRIMMED_S; longer audio keeps the medoid). With ``settings.noisy_second_model`` that
        model decodes the same playbacks too and the medoid is over both models' decodings. A
        ``partial`` transcript skips the noisy beam, the speeds, the second model and the
        language model (the filters stay)."""
        filtering = (
            self.settings.min_word_prob > 0
            or self.settings.min_word_level_db is not None
            or self.word_filter is not None
        )
        gate = self.settings.filter_below_snr_db
        noisy_beam = self.settings.noisy_beam_size if beam_size is None and not partial else None
        speeds = () if partial else self.noisy_speeds
        noisy = False
        if gate is not None and (filtering or noisy_beam or speeds):
            if estimated_snr(audio) >= gate:
                filtering = False  # clean enough: every word stays, the usual beam
            else:
                noisy = True
                beam_size = int(noisy_beam) if noisy_beam else beam_size
        align = filtering and not words
        nbest = self.settings.nbest if nbest is None else nbest
        several = noisy and speeds and not words and nbest == 1
        # Beams give alternatives on the trimmed window only; longer audio keeps the medoid.
        short = len(audio) <= MAX_TRIMMED_S * SAMPLE_RATE
        choosing = several and self.noisy_lm is not None and short
        if choosing:
            nbest = LM_NBEST  # each speed's other best hypotheses are candidates too
        asked = nbest
        if filtering and self.word_filter is not None and self.word_filter.nbest and not words:
            nbest = max(nbest, NBEST)  # the filter's agreement cue reads the n best
        args = (words, prompt, language, temperature, align, nbest, beam_size, filtering, asked)
        out = self._recognise(audio, *args)
        if several:
            from duetto.data.augment import speed_perturb

            playbacks = [(s, speed_perturb(audio, s)) for s in speeds if s != 1.0]
            decodings = [out] + [
                _unscaled(self._recognise(clip, *args), s, out.duration) for s, clip in playbacks
            ]
            if self.second is not None:  # the same playbacks, the original first
                decodings += [
                    _unscaled(self.second._recognise(clip, *args), s, out.duration)
                    for s, clip in [(1.0, audio), *playbacks]
                ]
            seconds = sum(d.seconds for d in decodings)
            if choosing:
                started = time.perf_counter()
                with self._lm_lock:  # one llama.cpp context: one caller at a time
                    out = lm_choice(
                        decodings,
                        self.noisy_lm,
                        self.settings.noisy_lm_weight,
                        self.settings.noisy_lm_word_bonus,
                    )
                seconds += time.perf_counter() - started
            else:
                out = _medoid(decodings)
            out = replace(out, seconds=seconds, alternatives=())
        return out

    def _recognise(
        self, audio, words, prompt, language, temperature, align, nbest, beam, filtering, asked
    ) -> Transcription:
        """One decoding of ``audio`` with the loop guard and the word filters as set."""
        # beam None: the settings' beam, resolved in _decode (which benches call directly).
        out = self._decode(audio, words, prompt, language, temperature, align, nbest, beam)
        if self.settings.loop_guard and temperature == 0:
            out = self._guard_loops(out, audio, words, prompt, language, align, nbest, beam)
        if not filtering:
            return out
        out = _filter_words(out, audio, self.settings, self.word_filter)
        return out if asked > 1 else replace(out, alternatives=())

    def _guard_loops(
        self, out, audio, words, prompt, language, align, nbest, beam
    ) -> Transcription:
        import ctranslate2

        seconds = out.seconds
        ctranslate2.set_random_seed(LOOP_GUARD_SEED)  # the same audio gets the same transcript
        for temperature in FALLBACK_TEMPERATURES:
            if compression_ratio(out.text) <= MAX_COMPRESSION_RATIO:
                break
            out = self._decode(audio, words, prompt, language, temperature, align, nbest, beam)
            seconds += out.seconds
        return replace(out, seconds=seconds)

    def _decode(
        self,
        audio: np.ndarray,
        words: bool,
        prompt: str | None,
        language: str | None,
        temperature: float,
        align: bool = False,
        nbest: int = 1,
        beam: int | None = None,
    ) -> Transcription:
        started = time.perf_counter()
        beam = self.settings.beam_size if beam is None else max(beam, 1)
        language = language or self.settings.language
        if not self.multilingual:
            language = "en"
        prompt = self.settings.prompt if prompt is None else prompt
        fast = self.settings.trim_window and not words and language
        if fast and len(audio) <= MAX_TRIMMED_S * SAMPLE_RATE:
            return self._transcribe_trimmed(
                audio, language, temperature, started, prompt, align, nbest, beam
            )
        words = words or align
        segments, info = self.model.transcribe(
            audio.astype(np.float32, copy=False),
            language=language,
            beam_size=beam,
            temperature=temperature,
            initial_prompt=prompt or None,
            word_timestamps=words,
            condition_on_previous_text=False,
            without_timestamps=not words,
            vad_filter=False,
        )
        out = tuple(_segment(s) for s in segments)  # decoding happens while iterating
        text = " ".join(s.text for s in out).strip()
        return Transcription(
            text=" ".join(text.split()),
            segments=out,
            language=info.language,
            duration=len(audio) / SAMPLE_RATE,
            seconds=time.perf_counter() - started,
        )

    def _transcribe_trimmed(
        self,
        audio: np.ndarray,
        language: str,
        temperature: float,
        started: float,
        prompt: str | None = None,
        align_words: bool = False,
        nbest: int = 1,
        beam: int = 1,
    ) -> Transcription:
        """Whisper on a window as long as the audio (+1 s of silence, 10 s at least), not 30 s.
        ``align_words``: word timings and probabilities by aligning the transcript on the same
        encoder output (cross-attention DTW), for the word filters. ``nbest`` > 1: the beam's
        ``nbest`` best hypotheses too, from the same search on the same encoder output. ``beam``:
        the beam's width (at least ``nbest`` is used)."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        pad = max(TRIM_PAD, int(MIN_WINDOW_S * SAMPLE_RATE) - len(audio))
        padded = np.concatenate([audio.astype(np.float32), np.zeros(pad, np.float32)])
        features = self.model.feature_extractor(padded)
        frames = min(features.shape[-1] // 2 * 2, FULL_WINDOW_FRAMES)
        encoded = self.model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None, :, :frames])),
            to_cpu=False,
        )
        tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.multilingual, task="transcribe", language=language
        )
        duration = len(audio) / SAMPLE_RATE
        context = _prompt_tokens(tokenizer, prompt)
        nbest = max(nbest, 1)
        result = self.model.model.generate(
            encoded,
            [[*context, *tokenizer.sot_sequence, tokenizer.no_timestamps]],
            beam_size=max(beam, nbest),
            num_hypotheses=nbest,
            return_scores=nbest > 1,
            sampling_temperature=max(temperature, 1e-5) if temperature > 0 else 1.0,
            # The cap counts the prompt too: CTranslate2 measures length from the first token.
            max_length=len(context) + int(MAX_TOKENS_PER_S * duration) + 8,
            suppress_blank=True,
            suppress_tokens=[-1],
            # Without a 30 s window's trailing silence, Whisper may start the sentence again.
            no_repeat_ngram_size=NO_REPEAT_NGRAM,
            return_no_speech_prob=True,
        )[0]
        texts = [_hypothesis_text(tokenizer, ids) for ids in result.sequences_ids]
        text = texts[0]
        words = self._align(encoded, tokenizer, text, len(audio)) if align_words else ()
        segment = Segment(
            start=0.0,
            end=round(duration, 3),
            text=text,
            words=words,
            no_speech_prob=result.no_speech_prob,
        )
        return Transcription(
            text=text,
            segments=(segment,) if text else (),
            language=language,
            duration=duration,
            seconds=time.perf_counter() - started,
            # Mean token log-probabilities (CTranslate2's scores, length penalty 1), best first.
            alternatives=tuple(zip(texts, map(float, result.scores), strict=True))
            if nbest > 1
            else (),
        )

    def _align(self, encoded, tokenizer, text: str, samples: int) -> tuple[Word, ...]:
        """Each word of ``text`` with its start and end (the first audio frame its first token is
        aligned to, and the next word's) and its mean token probability."""
        tokens = tokenizer.encode(" " + text.strip()) if text.strip() else []
        if not tokens:
            return ()
        mel_frames = samples // self.model.feature_extractor.hop_length
        result = self.model.model.align(encoded, tokenizer.sot_sequence, [tokens], mel_frames)[0]
        probs = np.asarray(result.text_token_probs, np.float64)
        token_time = np.full(len(tokens) + 1, np.nan)
        for index, frame in result.alignments:  # the DTW path, in order of time
            if index <= len(tokens) and np.isnan(token_time[index]):
                token_time[index] = frame * ENCODER_FRAME_S
        token_time = np.fmax.accumulate(np.nan_to_num(token_time, nan=0.0))
        names, groups = tokenizer.split_to_word_tokens(tokens)
        out, first = [], 0
        for name, group in zip(names, groups, strict=True):
            last = first + len(group)
            if out and not any(c.isalnum() for c in name):  # punctuation: part of the word before
                out[-1] = replace(out[-1], word=out[-1].word + name.strip())
            elif name.strip():
                out.append(
                    Word(
                        word=name.strip(),
                        start=round(float(token_time[first]), 3),
                        end=round(float(token_time[last]), 3),
                        probability=round(float(probs[first:last].mean()), 3),
                    )
                )
            first = last
        return tuple(out)


def compression_ratio(text: str) -> float:
    """Length of ``text`` over its zlib-compressed length: high for repetition loops."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def level_db(audio: np.ndarray, start: float = 0.0, end: float | None = None) -> float:
    """Mean power in dB of ``audio[start:end]`` (seconds; one 32 ms frame at least)."""
    a = max(int(start * SAMPLE_RATE), 0)
    b = len(audio) if end is None else min(max(int(end * SAMPLE_RATE), a + LEVEL_FRAME), len(audio))
    seg = audio[a:b].astype(np.float64)
    return float(10 * np.log10(np.mean(np.square(seg)) + 1e-10)) if len(seg) else -100.0


def loud_level_db(audio: np.ndarray) -> float:
    """The utterance's loud level: the 95th percentile of its 32 ms frame powers, in dB (the
    user's voice at a close microphone; background talkers sit below it)."""
    return float(np.percentile(10 * np.log10(frame_energies(audio) + 1e-10), 95))


def noisy_speeds(value) -> tuple[float, ...]:
    """``asr.noisy_speeds`` as a tuple of speeds: from a list, or "0.95,1.05" (a flag or an
    environment variable); each must be a sane speed (duetto.data.augment.check_speed)."""
    from duetto.data.augment import check_speed
    from duetto.errors import ConfigError, DuettoError

    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else value
    try:
        return tuple(check_speed(float(v)) for v in items)
    except (TypeError, ValueError, DuettoError) as exc:
        raise ConfigError(
            f"asr.noisy_speeds must be speeds like 0.95,1.05 (0.5..2), got {value!r}: {exc}"
        ) from None


def _unscaled(out: Transcription, speed: float, duration: float) -> Transcription:
    """A decoding of the audio played at ``speed``, its times put back on the original's."""
    segments = tuple(
        replace(
            seg,
            start=seg.start * speed,
            end=seg.end * speed,
            words=tuple(replace(w, start=w.start * speed, end=w.end * speed) for w in seg.words),
        )
        for seg in out.segments
    )
    return replace(out, segments=segments, duration=duration)


def medoid(texts: list[str]) -> int:
    """Index of the text with the fewest word edits (normalized) to the others; the first of
    those on a tie."""
    return lm_pick(texts, texts, [0.0] * len(texts), 0.0, 0.0)


def _medoid(decodings: list[Transcription]) -> Transcription:
    """The decoding :func:`medoid` picks; the first on a tie (the audio as played)."""
    return decodings[medoid([d.text for d in decodings])]


def lm_choice(decodings: list[Transcription], scorer, weight: float, bonus: float) -> Transcription:
    """Among ``decodings`` (of one clip at several speeds) and their beams' other hypotheses
    (``alternatives``), the candidate with the least ``edits + weight * (-log P) - bonus * words``,
    where ``edits`` counts its word edits (normalized text) to every decoding and ``log P`` is
    ``scorer``'s sentence log-probability; the first on a tie, decodings before alternatives.
    An alternative chosen comes back as its decoding with that text and no word timings."""
    texts = [d.text for d in decodings]
    candidates = lm_candidates(texts, [d.alternatives for d in decodings])
    logprobs = scorer.sentence_logprobs([t for t, _ in candidates])
    best = lm_pick([t for t, _ in candidates], texts, logprobs, weight, bonus)
    text, k = candidates[best]
    if best < len(decodings):
        return decodings[k]
    source = decodings[k]
    no_speech = source.segments[0].no_speech_prob if source.segments else 0.0
    segment = Segment(0.0, round(source.duration, 3), text, no_speech_prob=no_speech)
    return replace(source, text=text, segments=(segment,) if text else ())


def lm_candidates(
    texts: list[str], alternatives: list[tuple[tuple[str, float], ...]]
) -> list[tuple[str, int]]:
    """What :func:`lm_choice` chooses among, each with the index of the decoding it came from:
    the decodings' ``texts``, then each beam's other hypotheses (``alternatives[k][1:]``) not
    already among them."""
    out = [(t, k) for k, t in enumerate(texts)]
    seen = set(texts)
    for k, hypotheses in enumerate(alternatives):
        for text, _ in hypotheses[1:]:
            if text not in seen:
                seen.add(text)
                out.append((text, k))
    return out


def lm_pick(
    candidates: list[str], heard: list[str], logprobs: list[float], weight: float, bonus: float
) -> int:
    """Index of the candidate with the least word edits (normalized text) to the ``heard``
    decodings, less ``weight`` times its log-probability and ``bonus`` per word; the first on a
    tie. Weight and bonus 0 with the decodings as candidates: the medoid."""
    from duetto.data.textnorm import normalize_text, word_errors

    heard = [normalize_text(t) for t in heard]
    costs = []
    for text, logprob in zip(candidates, logprobs, strict=True):
        words = normalize_text(text)
        edits = sum(word_errors(words, other)[0] for other in heard)
        costs.append(edits - weight * logprob - bonus * len(words.split()))
    return int(np.argmin(costs))


def estimated_snr(audio: np.ndarray) -> float:
    """A blind SNR estimate in dB: the loud (95th percentile) over the quiet (10th) 32 ms frame
    power. Clips shorter than four frames count as clean (SNR_CLEAN_DB)."""
    if len(audio) < 4 * LEVEL_FRAME:
        return SNR_CLEAN_DB
    energy = frame_energies(audio) + 1e-12
    return float(10 * np.log10(np.percentile(energy, 95) / np.percentile(energy, 10)))


def _filter_words(
    out: Transcription,
    audio: np.ndarray,
    settings: ASRSettings,
    learned: LearnedWordFilter | None = None,
) -> Transcription:
    """Drop the words below ``settings.min_word_prob``, quieter than
    ``settings.min_word_level_db`` under the utterance's loud level, or that the ``learned``
    filter judges not the user's (at ``settings.word_filter_threshold``, or its own); the text is
    what is left."""
    loud = loud_level_db(audio) if settings.min_word_level_db is not None else 0.0
    learned_keep: set[int] = set()
    if learned is not None:
        words = [w for seg in out.segments for w in seg.words]
        no_speech = max((seg.no_speech_prob for seg in out.segments), default=0.0)
        cut = settings.word_filter_threshold
        cut = None if cut is None else float(cut)
        mask = learned.keep(words, audio, no_speech, cut, out.alternatives)
        learned_keep = {id(w) for w, k in zip(words, mask, strict=True) if k}

    def keep(w: Word) -> bool:
        if w.probability < settings.min_word_prob:
            return False
        if learned is not None and id(w) not in learned_keep:
            return False
        if settings.min_word_level_db is None:
            return True
        return level_db(audio, w.start, w.end) - loud >= settings.min_word_level_db

    segments = []
    for seg in out.segments:
        kept = tuple(w for w in seg.words if keep(w))
        if kept:
            segments.append(replace(seg, words=kept, text=" ".join(w.word for w in kept)))
    text = " ".join(s.text for s in segments)
    # The first alternative is the transcript, filtered too; the others stay as decoded.
    alternatives = (
        ((text, out.alternatives[0][1]), *out.alternatives[1:]) if out.alternatives else ()
    )
    return replace(out, text=text, segments=tuple(segments), alternatives=alternatives)


def _prompt_tokens(tokenizer, prompt: str | None) -> list[int]:
    """Whisper's previous-context block: ``<|startofprev|>`` and the prompt's tokens (its last
    MAX_PROMPT_TOKENS, as Whisper keeps the most recent context), or nothing without a prompt."""
    if not prompt or not prompt.strip():
        return []
    tokens = tokenizer.encode(" " + prompt.strip())
    return [tokenizer.sot_prev, *tokens[-MAX_PROMPT_TOKENS:]]


def _hypothesis_text(tokenizer, ids: list[int]) -> str:
    """One decoded hypothesis as text: special tokens off, spaces normalized, repeats dropped."""
    return _drop_repeats(" ".join(tokenizer.decode([t for t in ids if t < tokenizer.eot]).split()))


def _drop_repeats(text: str) -> str:
    """'A b c. A b c.' -> 'A b c.': a sentence said again, word for word or nearly (Whisper's
    repeats on short windows vary a word or two: 'help me' -> 'help help me'), is a decoding loop."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    kept: list[str] = []
    for sentence in sentences:
        if not kept or not _same_sentence(sentence, kept[-1]):
            kept.append(sentence)
    return " ".join(kept)


def _same_sentence(a: str, b: str) -> bool:
    words_a, words_b = _words(a), _words(b)
    if words_a == words_b:
        return True
    if min(len(words_a), len(words_b)) < 4:
        return False
    return difflib.SequenceMatcher(None, words_a, words_b).ratio() >= REPEAT_SIMILARITY


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w' ]", " ", text.lower()).split()


def _segment(seg) -> Segment:
    words = tuple(
        Word(
            word=w.word.strip(),
            start=round(w.start, 3),
            end=round(w.end, 3),
            probability=round(w.probability, 3),
        )
        for w in (seg.words or ())
    )
    return Segment(
        start=round(seg.start, 3),
        end=round(seg.end, 3),
        text=seg.text.strip(),
        words=words,
        avg_logprob=seg.avg_logprob,
        no_speech_prob=seg.no_speech_prob,
    )
