"""Encode synthesized audio chunk by chunk, so the first bytes leave while the rest is spoken.

wav and pcm are written directly; mp3, flac, opus (in Ogg) and aac (ADTS) go through FFmpeg's
encoders in PyAV, writing to an in-memory sink that is emptied after every chunk.
"""

from __future__ import annotations

import struct

import numpy as np

from duetto.audio import resample, to_pcm16
from duetto.server.pcm import WIRE_RATE

# response_format -> (content type, PyAV container, PyAV codec, encoder sample rate or None = voice's)
FORMATS: dict[str, tuple[str, str | None, str | None, int | None]] = {
    "wav": ("audio/wav", None, None, None),
    "pcm": ("audio/pcm", None, None, WIRE_RATE),  # OpenAI's raw PCM is 24 kHz
    "mp3": ("audio/mpeg", "mp3", "libmp3lame", None),
    "flac": ("audio/flac", "flac", "flac", None),
    "opus": ("audio/ogg", "ogg", "libopus", 48_000),  # Opus only runs at 48 kHz (and divisors)
    "aac": ("audio/aac", "adts", "aac", None),
}
# A WAV header's size fields when the length is not known yet (a stream): readers take "to the end".
UNKNOWN_SIZE = 0xFFFFFFFF


def content_type(fmt: str) -> str:
    return FORMATS[fmt][0]


class _Sink:
    """A write-only file for PyAV; non-seekable, so muxers write a streamable layout."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


class StreamEncoder:
    """``feed(float32 chunk)`` and ``finish()`` return the encoded bytes ready so far."""

    def __init__(self, fmt: str, sample_rate: int):
        if fmt not in FORMATS:
            raise ValueError(f"unknown audio format {fmt}")
        self.fmt = fmt
        self.rate = sample_rate
        self.header_sent = False
        self.pts = 0
        self.container = self.stream = None
        _, container, codec, rate = FORMATS[fmt]
        if container is not None:
            import av

            self.sink = _Sink()
            self.container = av.open(self.sink, mode="w", format=container)
            self.stream = self.container.add_stream(codec, rate=rate or sample_rate)
            self.stream.layout = "mono"

    def feed(self, samples: np.ndarray) -> bytes:
        if self.fmt == "pcm":
            return to_pcm16(resample(samples, self.rate, WIRE_RATE))
        if self.fmt == "wav":
            head = b"" if self.header_sent else wav_header(self.rate)
            self.header_sent = True
            return head + to_pcm16(samples)
        return self._encode(samples)

    def finish(self) -> bytes:
        if self.fmt == "wav" and not self.header_sent:
            self.header_sent = True
            return wav_header(self.rate)
        if self.container is None:
            return b""
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        return self.sink.take()

    def _encode(self, samples: np.ndarray) -> bytes:
        import av

        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self.pts
        self.pts += pcm.shape[1]
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        return self.sink.take()


def wav_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length."""
    byte_rate = sample_rate * 2
    return (
        b"RIFF"
        + struct.pack("<I", UNKNOWN_SIZE)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, 2, 16)
        + b"data"
        + struct.pack("<I", UNKNOWN_SIZE)
    )
