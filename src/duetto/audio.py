"""Decode, resample and write audio. Everything inside duetto is float32 mono at 16 kHz
unless a stage says otherwise (TTS voices keep their own rate until output)."""

from __future__ import annotations

import io
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np

from duetto.errors import AudioFormatError, AudioTooLongError, DuettoError, EmptyAudioError

# Whisper and Silero VAD both work at 16 kHz; converting once at the edge keeps every stage simple.
SAMPLE_RATE = 16_000

AudioSource = str | Path | bytes | BinaryIO

SUPPORTED = "wav, flac, ogg/opus, mp3, m4a or webm"
# Sample rates a real recording can have; a corrupt header claiming 3 Hz or 2 GHz would make the
# resampler allocate terabytes (found by the decoder fuzzer).
MIN_RATE, MAX_RATE = 4_000, 384_000
# Above this up/down factor (rates with a tiny common divisor, e.g. 15,999 Hz) polyphase filters
# get huge and slow; FFT resampling costs the same for any pair of rates.
MAX_POLYPHASE_FACTOR = 1_000
# libsndfile reads this many samples at a time (4 MB of float32).
READ_BLOCK_SAMPLES = 1 << 20


# Frames of level statistics (a 32 ms Silero window at 16 kHz).
LEVEL_FRAME = 512


def frame_energies(audio: np.ndarray, frame: int = LEVEL_FRAME) -> np.ndarray:
    """Mean power of each whole ``frame``-sample frame (a clip shorter than one: zero-padded)."""
    n = max(len(audio) // frame, 1)
    x = np.zeros(n * frame, np.float64)
    x[: min(len(audio), n * frame)] = audio[: n * frame]
    return np.square(x).reshape(n, frame).mean(axis=1)


def run_frames(x: np.ndarray, frame: int, delay: int, process) -> np.ndarray:
    """Run a streaming frame processor (a noise suppressor's C library) over the whole of ``x``.

    ``process(block, out)`` fills ``out`` for each ``frame``-sample float32 ``block`` (the last
    one zero-padded, with enough padding to flush ``delay``); the processor's output lags its
    input by ``delay`` samples, which is taken off, so the result lines up with ``x``."""
    n = -(-(len(x) + delay) // frame)
    padded = np.zeros(n * frame, np.float32)
    padded[: len(x)] = x
    out = np.zeros_like(padded)
    for i in range(n):
        block = np.ascontiguousarray(padded[i * frame : (i + 1) * frame])
        target = np.zeros(frame, np.float32)
        process(block, target)
        out[i * frame : (i + 1) * frame] = target
    return out[delay : delay + len(x)]


def load_audio(
    source: AudioSource,
    sample_rate: int = SAMPLE_RATE,
    name: str | None = None,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Decode any common audio file (path, bytes or file object) to float32 mono at ``sample_rate``.

    Raises :class:`AudioFormatError` for bytes that are not decodable audio,
    :class:`EmptyAudioError` when the audio holds no samples and :class:`AudioTooLongError` when
    it lasts more than ``max_seconds`` (checked while decoding: a small compressed file can hold
    hours of silence).
    """
    label, data = _read_bytes(source, name)
    if not data:
        raise EmptyAudioError(f"{label} is empty (0 bytes)", f"give a {SUPPORTED} file")
    samples, rate = _decode(data, label, max_seconds)
    if samples.size == 0:
        raise EmptyAudioError(f"{label} holds no audio samples", "record or choose a longer file")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioFormatError(
            f"{label} claims a sample rate of {rate} Hz (corrupt header?)",
            f"give a {SUPPORTED} file at {MIN_RATE}-{MAX_RATE} Hz",
        )
    _check_length(len(samples), rate, max_seconds, label)
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


def _check_length(frames: int, rate: int, max_seconds: float | None, label: str) -> None:
    if max_seconds is not None and rate > 0 and frames > max_seconds * rate:
        raise AudioTooLongError(
            f"{label} lasts more than the limit of {max_seconds:g} s", "split it into shorter files"
        )


def _decode(data: bytes, label: str, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if _is_truncated_wav(data):
        raise AudioFormatError(
            f"{label} is a truncated WAV file (its data ends early)", "re-export it"
        )
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            _check_length(f.frames, f.samplerate, max_seconds, label)
            return _read_blocks(f, max_seconds, label), f.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, AudioTooLongError):
        pass  # not a format libsndfile knows (mp3 on old builds, m4a, webm), or a FLAC stream of
        # unknown length that it misreads as huge: try FFmpeg, which counts the real samples
    return _decode_with_av(data, label, max_seconds)


def _read_blocks(f, max_seconds: float | None, label: str) -> np.ndarray:
    """Read block by block: a corrupt header may claim a trillion frames (or channels), and
    reading it in one call would allocate them all before finding out (decoder fuzzer)."""
    block = max(1, READ_BLOCK_SAMPLES // max(1, f.channels))
    parts, frames = [], 0
    while True:
        part = f.read(block, dtype="float32", always_2d=True)
        if not len(part):
            break
        parts.append(part)
        frames += len(part)
        _check_length(frames, f.samplerate, max_seconds, label)
    samples = np.concatenate(parts) if parts else np.zeros((0, f.channels), np.float32)
    return samples[:, 0] if samples.shape[1] == 1 else samples


def _decode_with_av(
    data: bytes, label: str, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioFormatError(f"{label} has no audio stream", f"give a {SUPPORTED} file")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(
                format="flt", layout="mono", rate=stream.rate or SAMPLE_RATE
            )
            rate = stream.rate or SAMPLE_RATE
            parts, frames = [], 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                    frames += parts[-1].size
                _check_length(frames, rate, max_seconds, label)
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
    except (AudioFormatError, AudioTooLongError):
        raise
    # The bytes come from users: whatever PyAV raises on them (FFmpeg errors, and on a corrupt
    # header AttributeError, TypeError, KeyError... from a half-built stream) means "not audio we
    # can decode". MemoryError is left alone: it is about this machine, not the file.
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
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
    up, down = rate_out // g, rate_in // g
    if max(up, down) > MAX_POLYPHASE_FACTOR:
        from scipy.signal import resample as fft_resample

        length = int(round(len(samples) * rate_out / rate_in))
        return fft_resample(samples, length).astype(np.float32)
    return resample_poly(samples, up, down).astype(np.float32)


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
