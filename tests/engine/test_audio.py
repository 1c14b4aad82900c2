"""Audio decoding: every common format, rate and channel count, and clear errors for bad files."""

import io

import numpy as np
import pytest
import soundfile as sf

from duetto.audio import SAMPLE_RATE, from_pcm16, load_audio, resample, run_frames, to_pcm16
from duetto.errors import AudioFormatError, DuettoError, EmptyAudioError


def tone(seconds=1.0, rate=44_100, freq=440.0, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def encode_with_av(samples, rate, fmt, codec):
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            (samples * 32767).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("rate", "channels", "fmt"),
    [(44_100, 2, "WAV"), (8_000, 1, "WAV"), (48_000, 1, "FLAC"), (22_050, 2, "OGG")],
)
def test_decodes_any_rate_and_channels_to_16k_mono(tmp_path, rate, channels, fmt):
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, tone(1.0, rate, channels=channels), rate, format=fmt)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - SAMPLE_RATE) < 200
    # The 440 Hz tone survives resampling: its spectral peak stays at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(audio) - 440) < 5


def test_decodes_mp3():
    data = encode_with_av(tone(1.0, 24_000), 24_000, "mp3", "libmp3lame")
    audio = load_audio(data, name="x.mp3")
    assert 0.9 * SAMPLE_RATE < len(audio) < 1.2 * SAMPLE_RATE
    assert np.abs(audio).max() > 0.3


def test_not_audio_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples " * 50)
    with pytest.raises(AudioFormatError, match="not audio"):
        load_audio(path)


def test_empty_file_and_empty_audio(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match="empty"):
        load_audio(empty)
    silent = tmp_path / "zero.wav"
    sf.write(silent, np.zeros(0, np.float32), 16_000)
    with pytest.raises(EmptyAudioError):
        load_audio(silent)


def test_truncated_wav_is_detected(tmp_path):
    path = tmp_path / "full.wav"
    sf.write(path, tone(1.0, 16_000), 16_000, subtype="PCM_16")
    data = path.read_bytes()
    with pytest.raises(AudioFormatError, match="truncated"):
        load_audio(data[: len(data) // 2], name="half.wav")


def test_missing_file():
    with pytest.raises(DuettoError, match="not found"):
        load_audio("/nonexistent/file.wav")


def test_pcm16_round_trip_and_resample_length():
    x = tone(0.5, 16_000)
    assert np.allclose(from_pcm16(to_pcm16(x)), x, atol=1e-4)
    assert len(resample(x, 16_000, 22_050)) == int(0.5 * 22_050)
    with pytest.raises(AudioFormatError):
        from_pcm16(b"\x00\x01\x02")


def test_run_frames_undoes_the_processors_delay_and_flushes_the_tail():
    delay, history = 3, np.zeros(3, np.float32)

    def delay_line(block, out):  # a streaming processor whose output lags by `delay` samples
        nonlocal history
        joined = np.concatenate([history, block])
        out[:] = joined[: len(block)]
        history = joined[-delay:]

    x = np.arange(1, 11, dtype=np.float32)  # 10 samples: not a whole number of 4-sample frames
    np.testing.assert_array_equal(run_frames(x, 4, delay, delay_line), x)
