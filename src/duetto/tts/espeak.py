"""espeak-ng backend through ctypes, with the library ``espeakng-loader`` ships.

GPL-3.0: only this module loads espeak-ng. It speaks 100+ languages, so it is the fallback for
languages that have no Piper voice.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from duetto.errors import MissingExtraError, ModelNotFoundError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_RATE = 1
_DEFAULT_WPM = 175  # espeak-ng's own default speaking rate

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_lock = threading.Lock()
_lib = None
_rate = 0


def _library():
    global _lib, _rate
    if _lib is None:
        try:
            import espeakng_loader
        except ImportError:
            raise MissingExtraError("espeak-ng TTS", "piper") from None
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
        _rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, 0)
        if _rate <= 0:
            raise ModelNotFoundError("espeak-ng failed to initialize its data folder")
        _lib = lib
    return _lib


class EspeakTTS:
    def __init__(self, voice: str = "en-us"):
        self.lib = _library()
        self.sample_rate = _rate
        self.voice = voice
        self.name = f"espeak-{voice}"
        with _lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ModelNotFoundError(
                    f"unknown espeak-ng voice '{voice}'",
                    "use a language code such as en-us, de, fr, es",
                )

    def stream(self, text: str, *, speed: float = 1.0) -> Iterator[np.ndarray]:
        if not text.strip():
            return
        parts: list[np.ndarray] = []

        def collect(wav, n, _events):
            if wav and n > 0:
                parts.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.float32) / 32768.0)
            return 0

        callback = _SYNTH_CALLBACK(collect)
        data = text.encode("utf-8") + b"\0"
        with _lock:
            self.lib.espeak_SetSynthCallback(callback)
            self.lib.espeak_SetVoiceByName(self.voice.encode())
            self.lib.espeak_SetParameter(_RATE, int(_DEFAULT_WPM * speed), 0)
            self.lib.espeak_Synth(data, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
        if parts:
            yield np.concatenate(parts)


_IPA_MODE = 0x02  # espeak_TextToPhonemes phonememode bit 1: IPA as UTF-8
_PHONEME_SEPARATOR = ord(" ") << 8  # bits 8-23: the character between phonemes


def phonemize(text: str, voice: str = "en-us") -> str:
    """espeak-ng's IPA for ``text``: phonemes separated by spaces, clauses by ``" _ "``."""
    lib = _library()
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_int,
        ctypes.c_int,
    ]
    out = []
    with _lock:
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ModelNotFoundError(f"unknown espeak-ng voice '{voice}'")
        buf = ctypes.c_char_p(text.encode("utf-8"))
        while buf.value:
            chunk = lib.espeak_TextToPhonemes(
                ctypes.byref(buf), _CHARS_UTF8, _IPA_MODE | _PHONEME_SEPARATOR
            )
            if chunk:
                out.append(chunk.decode("utf-8", errors="replace"))
    return " _ ".join(out)
