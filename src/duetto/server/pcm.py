"""PCM16 over the wire: base64 framing and a resampler that keeps its state across packets."""

from __future__ import annotations

import base64
import binascii
from math import gcd

import numpy as np

from duetto.audio import SAMPLE_RATE, from_pcm16, resample, to_pcm16
from duetto.errors import AudioFormatError

# OpenAI's realtime and ``pcm`` speech formats: 16-bit little-endian mono at 24 kHz.
WIRE_RATE = 24_000
# Lowpass taps per unit of the larger resampling factor: enough for a clean 24k -> 16k without
# costing more than a few percent of a core at real time.
TAPS_PER_FACTOR = 24


def decode_b64_pcm16(data: str) -> np.ndarray:
    """Base64 PCM16 (as in ``input_audio_buffer.append``) to float32 samples."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise AudioFormatError(
            "'audio' is not valid base64", "send base64-encoded 16-bit little-endian PCM"
        ) from None
    return from_pcm16(raw)


def encode_b64_pcm16(samples: np.ndarray, rate: int) -> str:
    """Float samples at ``rate`` to base64 PCM16 at :data:`WIRE_RATE`."""
    return base64.b64encode(to_pcm16(resample(samples, rate, WIRE_RATE))).decode("ascii")


class StreamResampler:
    """Polyphase FIR resampling of a stream cut into packets, with no clicks at packet edges.

    Each packet is filtered with the state the previous one left, so the result equals
    resampling the whole stream at once (delayed by half the filter, well under a millisecond).
    """

    def __init__(self, rate_in: int = WIRE_RATE, rate_out: int = SAMPLE_RATE):
        from scipy.signal import firwin

        g = gcd(rate_in, rate_out)
        self.up, self.down = rate_out // g, rate_in // g
        factor = max(self.up, self.down)
        self.passthrough = self.up == self.down == 1
        self.taps = firwin(TAPS_PER_FACTOR * factor + 1, 1.0 / factor) * self.up
        self.state = np.zeros(len(self.taps) - 1)
        self.phase = 0  # index, in the next upsampled packet, of the next output sample

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        if self.passthrough or samples.size == 0:
            return samples.astype(np.float32, copy=False)
        upsampled = np.zeros(len(samples) * self.up)
        upsampled[:: self.up] = samples
        filtered, self.state = lfilter(self.taps, 1.0, upsampled, zi=self.state)
        out = filtered[self.phase :: self.down]
        self.phase = (self.phase - len(upsampled)) % self.down
        return out.astype(np.float32)
