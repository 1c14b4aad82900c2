"""Plain-language advice for a mispronounced phone, and how to write phones for people."""

from __future__ import annotations

# ARPAbet -> IPA, for showing phones to learners ("/θ/" reads better than "TH").
IPA = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "B": "b", "CH": "tʃ", "D": "d",
    "DH": "ð", "EH": "ɛ", "ER": "ɝ", "EY": "eɪ", "F": "f", "G": "ɡ", "HH": "h", "IH": "ɪ", "IY": "i",
    "JH": "dʒ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "OW": "oʊ", "OY": "ɔɪ", "P": "p",
    "R": "ɹ", "S": "s", "SH": "ʃ", "T": "t", "TH": "θ", "UH": "ʊ", "UW": "u", "V": "v", "W": "w",
    "Y": "j", "Z": "z", "ZH": "ʒ",
}  # fmt: skip

# How to make each sound, in a learner's words.
ADVICE = {
    "TH": "put the tip of the tongue between the teeth and blow air softly, no voice",
    "DH": "put the tongue between the teeth and let the voice buzz",
    "R": "curl the tongue back without touching the roof of the mouth; round the lips a little",
    "L": "touch the ridge behind the upper teeth with the tongue tip and let air pass at the sides",
    "V": "rest the upper teeth on the lower lip and let the voice buzz",
    "W": "round the lips tightly, then open them into the vowel",
    "Z": "as for /s/, but let the voice buzz",
    "S": "keep the tongue close behind the upper teeth and hiss, no voice",
    "SH": "round the lips and push them forward, tongue a little further back than for /s/",
    "ZH": "as for /ʃ/ but with voice, like the middle of 'measure'",
    "N": "close the mouth with the tongue on the ridge behind the teeth and hum through the nose",
    "NG": "raise the back of the tongue to the soft palate and hum through the nose; no /g/ after it",
    "M": "close the lips and hum",
    "IH": "a short, relaxed /ɪ/: less tense and shorter than the /i/ in 'see'",
    "IY": "spread the lips and hold a long, tense /i/",
    "AE": "open the jaw wide and spread the lips, as in 'cat'",
    "AH": "a short, relaxed central vowel, mouth half open",
    "AA": "open the mouth wide, tongue low and back, as in 'father'",
    "AO": "round the lips and lower the jaw, as in 'law'",
    "UH": "a short, relaxed /ʊ/ with lightly rounded lips, as in 'book'",
    "UW": "round the lips tightly and hold a long /u/, as in 'food'",
    "EH": "open the mouth a little more than for /eɪ/ and keep it steady, as in 'bed'",
    "ER": "curl the tongue back for the whole vowel, as in 'bird'",
    "EY": "glide from /e/ to /ɪ/, as in 'day'",
    "AY": "glide from an open /a/ to /ɪ/, as in 'my'",
    "AW": "glide from an open /a/ to a rounded /ʊ/, as in 'now'",
    "OW": "glide into rounded lips, as in 'go'",
    "OY": "glide from rounded /ɔ/ to /ɪ/, as in 'boy'",
    "T": "tap the ridge behind the teeth and release a puff of air; don't drop it at the end of a word",
    "D": "tap the ridge behind the teeth with voice; say it fully at the end of a word",
    "K": "lift the back of the tongue and release a puff of air",
    "G": "lift the back of the tongue and release it with voice",
    "P": "close the lips and release a clear puff of air",
    "B": "close the lips and release with voice",
    "F": "rest the upper teeth on the lower lip and blow, no voice",
    "HH": "breathe out gently through an open mouth before the vowel",
    "CH": "start with the tongue on the ridge as for /t/ and release into /ʃ/",
    "JH": "as for /tʃ/ but with voice, as in 'judge'",
    "Y": "start with the tongue high as for /i/ and glide into the vowel",
}


def show(phone: str) -> str:
    """ "/θ/" for "TH"; anything unknown as it is."""
    return f"/{IPA.get(phone, phone.lower())}/"


def tip(expected: str, heard: str, word: str) -> str:
    """One sentence: what went wrong with ``expected`` in ``word`` and how to fix it."""
    advice = ADVICE.get(expected, "listen to the model sentence and copy the sound slowly")
    where = f"in '{word.lower()}'"
    if heard in ("-", "", None):
        return f"{show(expected)} {where} was missing or too weak: {advice}."
    if heard == expected:
        return f"{show(expected)} {where} sounded unclear: {advice}."
    return f"{show(expected)} {where} sounded like {show(heard)}: {advice}."
