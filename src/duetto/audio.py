"""Decode, resample and write audio. Everything inside duetto is float32 mono at 16 kHz
unless a stage says otherwise (TTS voices keep their own rate until output)."""

from __future__ import annotations

import io
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np

from duetto.errors import AudioFormatError, DuettoError, EmptyAudioError

# Whisper and Silero VAD both work at 16 kHz; converting once at the edge keeps every stage simple.
SAMPLE_RATE = 16_000

AudioSource = str | Path | bytes | BinaryIO

SUPPORTED = "wav, flac, ogg/opus, mp3, m4a or webm"


def load_audio(
    source: AudioSource, sample_rate: int = SAMPLE_RATE, name: str | None = None
) -> np.ndarray:
    """Decode any common audio file (path, bytes or file object) to float32 mono at ``sample_rate``.

    Raises :class:`AudioFormatError` for bytes that are not decodable audio and
    :class:`EmptyAudioError` when the audio holds no samples.
    """
    label, data = _read_bytes(source, name)
    if not data:
        raise EmptyAudioError(f"{label} is empty (0 bytes)", f"give a {SUPPORTED} file")
    samples, rate = _decode(data, label)
    if samples.size == 0:
        raise EmptyAudioError(f"{label} holds no audio samples", "record or choose a longer file")
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return resample(samples.astype(np.float32, copy=False), rate, sample_rate)


def _read_bytes(source: AudioSource, name: str | None) -> tuple[str, bytes]:
    if isinstance(source, bytes | bytearray):
        return name or "the audio", bytes(source)
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise DuettoError(f"audio file not found: {path}", "check the path")
        return str(path), path.read_bytes()
    return name or getattr(source, "name", "the audio"), source.read()


def _decode(data: bytes, label: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if _is_truncated_wav(data):
        raise AudioFormatError(
            f"{label} is a truncated WAV file (its data ends early)", "re-export it"
        )
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
        return samples, rate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        pass  # not a format libsndfile knows (mp3 on old builds, m4a, webm), or a FLAC stream of
        # unknown length that it misreads as huge: try FFmpeg
    return _decode_with_av(data, label)


def _decode_with_av(data: bytes, label: str) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioFormatError(f"{label} has no audio stream", f"give a {SUPPORTED} file")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(
                format="flt", layout="mono", rate=stream.rate or SAMPLE_RATE
            )
            parts = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
            rate = stream.rate or SAMPLE_RATE
    except AudioFormatError:
        raise
    # A corrupt header can leave a stream without a rate or layout (AttributeError, TypeError).
    except (
        av.error.FFmpegError,
        ValueError,
        IndexError,
        OSError,
        AttributeError,
        TypeError,
    ) as exc:
        raise AudioFormatError(
            f"{label} is not audio duetto can decode ({type(exc).__name__})",
            f"give a {SUPPORTED} file",
        ) from None
    if not parts:
        return np.zeros(0, np.float32), rate
    return np.concatenate(parts).astype(np.float32), rate


def _is_truncated_wav(data: bytes) -> bool:
    """True for a RIFF/WAVE file whose 'data' chunk claims more bytes than the file holds."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk_id == b"data":
            # 0 and 0xFFFFFFFF mean "unknown size" (streamed WAV): not truncated.
            return size not in (0, 0xFFFFFFFF) and pos + 8 + size > len(data)
        pos += 8 + size + (size & 1)
    return True  # no data chunk at all


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (band-limited, no phase shift)."""
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(rate_in), int(rate_out))
    return resample_poly(samples, rate_out // g, rate_in // g).astype(np.float32)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float [-1, 1] to little-endian 16-bit PCM bytes."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def from_pcm16(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM bytes to float32 in [-1, 1]."""
    if len(data) % 2:
        raise AudioFormatError(
            "PCM16 audio must have an even number of bytes", "send whole samples"
        )
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write float samples as a 16-bit PCM WAV file."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16")
    return path


def duration(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    return len(samples) / float(sample_rate)
