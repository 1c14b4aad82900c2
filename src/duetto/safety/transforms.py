"""The everyday changes a watermark must survive, as plain functions (for tests and benches).

Each takes float32 mono samples and their rate and returns ``(samples, rate)``.
"""

from __future__ import annotations

import io
from math import gcd

import numpy as np
from scipy.signal import resample_poly

from duetto.errors import AudioFormatError

# 64 kbit/s: the bitrate for MP3 and Opus; a typical voice-message quality.
CODEC_BITRATE = 64_000


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return x.astype(np.float32)
    g = gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g).astype(np.float32)


def reencode(
    samples: np.ndarray, rate: int, codec: str, bitrate: int = CODEC_BITRATE
) -> tuple[np.ndarray, int]:
    """Encode with FFmpeg's ``codec`` ("mp3" or "opus") at ``bitrate`` and decode again."""
    import av

    # Opus only takes 48/24/16/12/8 kHz; MP3 takes the usual rates (22,050 included).
    enc_rate = 48_000 if codec == "opus" else rate
    x = _resample(samples, rate, enc_rate)
    fmt, codec_name = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus")}[codec]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec_name, rate=enc_rate)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
        frame_size = stream.codec_context.frame_size or 1024
        for i in range(0, len(pcm), frame_size):
            frame = av.AudioFrame.from_ndarray(
                pcm[None, i : i + frame_size], format="s16", layout="mono"
            )
            frame.sample_rate = enc_rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    parts = []
    with av.open(buf, mode="r") as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=enc_rate)
        for frame in container.decode(audio=0):
            for o in resampler.resample(frame):
                parts.append(o.to_ndarray().reshape(-1))
    if not parts:
        raise AudioFormatError(f"{codec} round trip produced no audio")
    y = np.concatenate(parts).astype(np.float32)
    return _resample(y, enc_rate, rate), rate


def telephone(samples: np.ndarray, rate: int, low_rate: int = 8_000) -> tuple[np.ndarray, int]:
    """Resample to ``low_rate`` and back (loses everything above low_rate / 2)."""
    return _resample(_resample(samples, rate, low_rate), low_rate, rate), rate


def add_noise(samples: np.ndarray, rate: int, noise: np.ndarray | None, snr_db: float,
              seed: int = 0) -> tuple[np.ndarray, int]:  # fmt: skip
    """Add ``noise`` (white when None; tiled or cut to length) at ``snr_db`` over the signal."""
    rng = np.random.default_rng(seed)
    x = samples.astype(np.float64)
    if noise is None:
        n = rng.standard_normal(len(x))
    else:
        reps = int(np.ceil(len(x) / max(1, len(noise))))
        start = int(rng.integers(0, max(1, len(noise) * reps - len(x) + 1)))
        n = np.tile(noise.astype(np.float64), reps)[start : start + len(x)]
    p_sig = np.mean(x**2)
    p_noise = np.mean(n**2) or 1.0
    n *= np.sqrt(p_sig / p_noise / 10 ** (snr_db / 10))
    return (x + n).astype(np.float32), rate


def speed(samples: np.ndarray, rate: int, factor: float) -> tuple[np.ndarray, int]:
    """Play ``factor`` times faster (tape-style: tempo and pitch both change)."""
    up = 1000
    down = int(round(up * factor))
    g = gcd(up, down)
    return resample_poly(samples, up // g, down // g).astype(np.float32), rate


def crop(
    samples: np.ndarray, rate: int, seconds: float, start: float = 0.0
) -> tuple[np.ndarray, int]:
    """Keep ``seconds`` from ``start``."""
    a = int(start * rate)
    return samples[a : a + int(seconds * rate)].astype(np.float32), rate


def volume(samples: np.ndarray, rate: int, gain: float) -> tuple[np.ndarray, int]:
    return (samples * gain).astype(np.float32), rate
