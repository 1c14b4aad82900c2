"""Noise for robustness work: coloured noise, babble from other speakers, noise files, and mixing
at an exact signal-to-noise ratio measured on active speech.

The SNR is ``10 log10(P_speech / P_noise)`` where ``P_speech`` is the mean power of the clean
signal over the regions the VAD marks as speech (silence before and after an utterance would
otherwise dilute it and make every mixture harder than asked), and ``P_noise`` the mean power of
the noise actually added over the whole utterance.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duetto.audio import SAMPLE_RATE, load_audio
from duetto.errors import DuettoError, NoSpeechError

COLOURS = ("white", "pink", "brown")
# Beyond these an "SNR" is either silence (>60 dB: inaudible noise) or noise with a trace of
# speech (< -20 dB): both are mistakes on the command line, not experiments.
MIN_SNR_DB = -20.0
MAX_SNR_DB = 60.0
# Babble of about six talkers is dense enough to stop sounding like individual voices while
# keeping a speech-like spectrum and modulation (the classic "cocktail party" setting).
BABBLE_TALKERS = 6
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".webm")


def check_snr(snr_db: float) -> float:
    """Return ``snr_db`` or raise :class:`DuettoError` when it is outside sane bounds."""
    if not np.isfinite(snr_db) or not MIN_SNR_DB <= snr_db <= MAX_SNR_DB:
        raise DuettoError(
            f"SNR {snr_db} dB is outside the sane range {MIN_SNR_DB:g}..{MAX_SNR_DB:g} dB",
            "use e.g. 20 (mild), 10, 5 or 0 (hard)",
        )
    return float(snr_db)


def stable_rng(seed: int, *keys: str | float) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (not on processing order)."""
    text = "|".join(str(k) for k in (seed, *keys)).encode()
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(text)])


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power Gaussian noise with a white (flat), pink (1/f) or brown (1/f²) spectrum."""
    if kind not in COLOURS:
        raise DuettoError(f"unknown noise colour '{kind}'", f"use one of: {', '.join(COLOURS)}")
    white = rng.standard_normal(n)
    if kind == "white" or n < 2:
        out = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n)
        freqs[0] = freqs[1]  # keep DC finite
        exponent = {"pink": 0.5, "brown": 1.0}[kind]  # amplitude ~ f^-exponent: power 1/f or 1/f²
        out = np.fft.irfft(spectrum / freqs**exponent, n)
    out = out - out.mean()
    return (out / np.sqrt(np.mean(out**2) + 1e-20)).astype(np.float32)


def active_power(audio: np.ndarray, segments: Sequence[tuple[float, float]] | None = None) -> float:
    """Mean power of ``audio`` over speech ``segments`` (seconds); found with the VAD if None.

    Raises :class:`NoSpeechError` when there is no speech to measure.
    """
    if segments is None:
        segments = speech_activity(audio)
    mask = activity_mask(len(audio), segments)
    if not mask.any():
        raise NoSpeechError(
            "no speech found to measure the SNR on", "check the audio is not silent"
        )
    return float(np.mean(np.square(audio[mask], dtype=np.float64)))


def speech_activity(audio: np.ndarray, threshold: float = 0.5) -> list[tuple[float, float]]:
    """Speech regions of clean audio by the engine's VAD (:func:`duetto.vad.speech_segments`)."""
    from duetto.vad import speech_segments

    return speech_segments(audio, threshold=threshold)


def activity_mask(
    n: int, segments: Sequence[tuple[float, float]], rate: int = SAMPLE_RATE
) -> np.ndarray:
    mask = np.zeros(n, bool)
    for start, end in segments:
        mask[max(0, int(start * rate)) : min(n, int(np.ceil(end * rate)))] = True
    return mask


def fit_length(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of ``noise``: a random excerpt, or the noise looped when it is shorter."""
    if len(noise) == 0:
        raise DuettoError("the noise holds no samples", "use a longer noise file")
    if len(noise) >= n:
        start = int(rng.integers(0, len(noise) - n + 1))
        return noise[start : start + n]
    reps = -(-n // len(noise)) + 1
    start = int(rng.integers(0, len(noise)))
    return np.tile(noise, reps)[start : start + n]


@dataclass(frozen=True)
class Mixture:
    audio: np.ndarray
    snr_db: float  # as measured on the result, on active speech
    gain: float  # applied to the noise
    clipped: bool  # the mixture was scaled down to stay within [-1, 1]


def mix_at_snr(
    speech: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    segments: Sequence[tuple[float, float]] | None = None,
) -> Mixture:
    """``speech + g·noise`` with ``g`` chosen so the active-speech SNR is exactly ``snr_db``.

    ``noise`` must have the length of ``speech`` (see :func:`fit_length`). If the sum would clip,
    the whole mixture is scaled down, which keeps the SNR.
    """
    check_snr(snr_db)
    if len(noise) != len(speech):
        raise ValueError(f"noise has {len(noise)} samples, speech {len(speech)}")
    p_speech = active_power(speech, segments)
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_noise <= 0:
        raise DuettoError("the noise is silent", "use a noise file that holds sound")
    gain = float(np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10))))
    mixed = speech.astype(np.float64) + gain * noise
    peak = float(np.max(np.abs(mixed)))
    clipped = peak > 1.0
    if clipped:
        mixed /= peak / 0.99
    out = mixed.astype(np.float32)
    return Mixture(out, measured_snr(speech, gain * noise, segments), gain, clipped)


def measured_snr(speech: np.ndarray, added_noise: np.ndarray, segments=None) -> float:
    """Active-speech SNR in dB of a clean signal and the noise added to it."""
    p_noise = float(np.mean(np.square(added_noise, dtype=np.float64)))
    return float(10 * np.log10(active_power(speech, segments) / max(p_noise, 1e-30)))


class NoiseSource:
    """Makes noise of a given length for an utterance; deterministic for (seed, utterance id)."""

    name: str

    def noise(self, n: int, rng: np.random.Generator, exclude_speaker: str = "") -> np.ndarray:
        raise NotImplementedError


class ColouredNoise(NoiseSource):
    def __init__(self, kind: str):
        if kind not in COLOURS:
            raise DuettoError(f"unknown noise colour '{kind}'", f"use one of: {', '.join(COLOURS)}")
        self.name = kind

    def noise(self, n, rng, exclude_speaker=""):
        return coloured_noise(self.name, n, rng)


class FileNoise(NoiseSource):
    """Random excerpts of the audio files in a folder (loaded once, 16 kHz mono)."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise DuettoError(
                f"no audio files in noise folder {folder}",
                f"put {', '.join(AUDIO_EXTENSIONS)} files there",
            )
        self.name = f"dir:{folder.name}"
        self.clips = [load_audio(p) for p in files]

    def noise(self, n, rng, exclude_speaker=""):
        clip = self.clips[int(rng.integers(len(self.clips)))]
        return fit_length(clip, n, rng)


class Babble(NoiseSource):
    """Several talkers of a speech manifest, each at equal active level, summed.

    Talkers are drawn from speakers other than ``exclude_speaker``, so the voice being corrupted
    never appears in its own babble.
    """

    name = "babble"

    def __init__(
        self, manifest: str | Path, talkers: int = BABBLE_TALKERS, pool_per_speaker: int = 2
    ):
        from duetto.data.manifest import read_manifest

        m = read_manifest(manifest)
        by_speaker: dict[str, list] = {}
        for u in m:
            by_speaker.setdefault(u.speaker or u.id, []).append(u)
        if len(by_speaker) < talkers + 1:
            raise DuettoError(
                f"babble needs at least {talkers + 1} speakers, {manifest} has {len(by_speaker)}",
                "give a larger speech manifest with --babble-manifest",
            )
        self.talkers = talkers
        self.pool_per_speaker = pool_per_speaker
        self._by_speaker = {s: us[:pool_per_speaker] for s, us in sorted(by_speaker.items())}
        self._cache: dict[str, np.ndarray] = {}

    def _clip(self, utt) -> np.ndarray:
        if utt.id not in self._cache:
            audio = load_audio(utt.audio)
            try:
                level = active_power(audio)
            except NoSpeechError:
                level = float(np.mean(audio.astype(np.float64) ** 2)) or 1.0
            trimmed = _trim_silence(audio)
            self._cache[utt.id] = (trimmed / np.sqrt(level)).astype(np.float32)
        return self._cache[utt.id]

    def noise(self, n, rng, exclude_speaker=""):
        speakers = [s for s in self._by_speaker if s != exclude_speaker]
        chosen = rng.choice(len(speakers), size=self.talkers, replace=False)
        out = np.zeros(n, np.float64)
        for i in chosen:
            utts = self._by_speaker[speakers[int(i)]]
            out += fit_length(self._clip(utts[int(rng.integers(len(utts)))]), n, rng)
        return (out / np.sqrt(np.mean(out**2) + 1e-20)).astype(np.float32)


def _trim_silence(audio: np.ndarray) -> np.ndarray:
    """Cut leading and trailing silence so looped babble has no gaps."""
    segments = speech_activity(audio)
    if not segments:
        return audio
    a, b = int(segments[0][0] * SAMPLE_RATE), int(segments[-1][1] * SAMPLE_RATE)
    return audio[a:b] if b - a > SAMPLE_RATE // 4 else audio


def noise_source(spec: str, babble_manifest: str | Path | None = None) -> NoiseSource:
    """``white``, ``pink``, ``brown``, ``babble`` (needs ``babble_manifest``) or a folder path."""
    if spec in COLOURS:
        return ColouredNoise(spec)
    if spec == "babble":
        if babble_manifest is None:
            raise DuettoError(
                "babble noise needs a speech manifest", "pass --babble-manifest train.jsonl"
            )
        return Babble(babble_manifest)
    if Path(spec).is_dir():
        return FileNoise(spec)
    raise DuettoError(
        f"unknown noise '{spec}'", f"use {', '.join(COLOURS)}, babble, or a folder of noise files"
    )
