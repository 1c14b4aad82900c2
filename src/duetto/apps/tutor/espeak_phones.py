"""ARPAbet phones from espeak-ng's phonemizer, for words no lexicon knows.

espeak-ng is GPL-3.0 and comes only with the ``piper`` extra. The library is loaded by
:mod:`duetto.tts.espeak` (the one place that imports it); this module only asks it for IPA and
maps that onto the acoustic model's phones. Without the extra, :func:`arpabet` raises
:class:`~duetto.errors.MissingExtraError` and the lexicon falls back to spelling rules.
"""

from __future__ import annotations

_PRIMARY, _SECONDARY = "ˈ", "ˌ"
# IPA as espeak-ng writes en-us -> ARPAbet (longest symbols are matched first).
IPA = {
    "iː": "IY", "i": "IY", "ɪ": "IH", "ᵻ": "IH", "eɪ": "EY", "e": "EH", "ɛ": "EH", "æ": "AE", "a": "AE",
    "ɑː": "AA", "ɑ": "AA", "ɒ": "AA", "ɔː": "AO", "ɔ": "AO", "oʊ": "OW", "əʊ": "OW", "o": "OW", "oː": "OW",
    "ʊ": "UH", "uː": "UW", "u": "UW", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɚ": "ER", "ɜː": "ER", "ɝ": "ER",
    "aɪ": "AY", "aʊ": "AW", "ɔɪ": "OY", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "ɡ": "G",
    "g": "G", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH",
    "h": "HH", "tʃ": "CH", "dʒ": "JH", "m": "M", "n": "N", "ŋ": "NG", "l": "L", "ɫ": "L", "ɹ": "R",
    "r": "R", "ɾ": "T", "ʔ": "T", "w": "W", "j": "Y", "x": "K",
}  # fmt: skip
_SYMBOLS = sorted(IPA, key=len, reverse=True)


def ipa(text: str) -> str:
    """espeak-ng's en-us IPA for ``text`` (phonemes separated by spaces, words by ``" _ "``)."""
    from duetto.tts.espeak import phonemize  # raises MissingExtraError without the piper extra

    return phonemize(text, "en-us")


def arpabet(word: str) -> list[str]:
    """ARPAbet phones of one word; the vowel after a primary stress mark gets a ``1``."""
    phones: list[str] = []
    stress = False
    for token in ipa(word).split():
        i = 0
        while i < len(token):
            ch = token[i]
            if ch == _PRIMARY:
                stress, i = True, i + 1
                continue
            for symbol in _SYMBOLS:
                if token.startswith(symbol, i):
                    phone = IPA[symbol]
                    if stress and phone[0] in "AEIOU":
                        phone, stress = phone + "1", False
                    phones.append(phone)
                    i += len(symbol)
                    break
            else:
                i += 1  # length marks, secondary stress, syllable breaks
    return phones
