"""faster-whisper backend (CTranslate2): the bundled tiny.en by default, any model by name/path."""

from __future__ import annotations

import difflib
import re
import time

import numpy as np

from duetto.asr import Segment, Transcription
from duetto.audio import SAMPLE_RATE
from duetto.config import ASRSettings, auto_threads
from duetto.errors import ModelNotFoundError
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
# Whisper's decoder holds 448 positions; like Whisper, keep at most half of them for the prompt.
MAX_PROMPT_TOKENS = 223
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

    def transcribe(
        self,
        audio: np.ndarray,
        *,
        words: bool = False,
        prompt: str | None = None,
        language: str | None = None,
        temperature: float = 0.0,
    ) -> Transcription:
        started = time.perf_counter()
        language = language or self.settings.language
        if not self.multilingual:
            language = "en"
        prompt = self.settings.prompt if prompt is None else prompt
        fast = self.settings.trim_window and not words and language
        if fast and len(audio) <= MAX_TRIMMED_S * SAMPLE_RATE:
            return self._transcribe_trimmed(audio, language, temperature, started, prompt)
        segments, info = self.model.transcribe(
            audio.astype(np.float32, copy=False),
            language=language,
            beam_size=self.settings.beam_size,
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
    ) -> Transcription:
        """Whisper on a window as long as the audio (+1 s of silence, 10 s at least), not 30 s."""
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
        result = self.model.model.generate(
            encoded,
            [[*context, *tokenizer.sot_sequence, tokenizer.no_timestamps]],
            beam_size=self.settings.beam_size,
            sampling_temperature=max(temperature, 1e-5) if temperature > 0 else 1.0,
            # The cap counts the prompt too: CTranslate2 measures length from the first token.
            max_length=len(context) + int(MAX_TOKENS_PER_S * duration) + 8,
            suppress_blank=True,
            suppress_tokens=[-1],
            # Without a 30 s window's trailing silence, Whisper may start the sentence again.
            no_repeat_ngram_size=NO_REPEAT_NGRAM,
            return_no_speech_prob=True,
        )[0]
        ids = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = _drop_repeats(" ".join(tokenizer.decode(ids).split()))
        segment = Segment(
            start=0.0, end=round(duration, 3), text=text, no_speech_prob=result.no_speech_prob
        )
        return Transcription(
            text=text,
            segments=(segment,) if text else (),
            language=language,
            duration=duration,
            seconds=time.perf_counter() - started,
        )


def _prompt_tokens(tokenizer, prompt: str | None) -> list[int]:
    """Whisper's previous-context block: ``<|startofprev|>`` and the prompt's tokens (its last
    MAX_PROMPT_TOKENS, as Whisper keeps the most recent context), or nothing without a prompt."""
    if not prompt or not prompt.strip():
        return []
    tokens = tokenizer.encode(" " + prompt.strip())
    return [tokenizer.sot_prev, *tokens[-MAX_PROMPT_TOKENS:]]


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
