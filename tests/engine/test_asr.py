"""Whisper on the trimmed window: what it hears, and the loop guard for short clips."""

from __future__ import annotations

import jiwer
import pytest

from duetto.asr.whisper import WhisperASR, _drop_repeats
from duetto.config import ASRSettings


@pytest.fixture(scope="module")
def asr():
    return WhisperASR(ASRSettings())


@pytest.mark.parametrize(
    ("decoded", "kept"),
    [
        ("Yes. Yes.", "Yes."),
        ("A b c d. A b c d.", "A b c d."),
        (
            "Can you help me practice my pronunciation today? "
            "Can you help help me practice My pronunciation today",
            "Can you help me practice my pronunciation today?",
        ),
        # Two different sentences, even with words in common, are both kept.
        (
            "What is my balance today? What is my savings rate today?",
            "What is my balance today? What is my savings rate today?",
        ),
        ("No. Go on.", "No. Go on."),
    ],
)
def test_a_sentence_decoded_twice_is_kept_once(decoded, kept):
    assert _drop_repeats(decoded) == kept


def test_a_short_question_is_heard_once(asr, speak):
    # On a 3 s clip tiny.en used to start the sentence again after finishing it.
    question = "Can you help me practise my pronunciation today?"
    heard = asr.transcribe(speak(question)).text
    assert heard.lower().count("pronunciation") == 1, heard
    assert jiwer.wer("can you help me practice my pronunciation today", heard.lower()[:-1]) < 0.2


# "KATE LOVES CHINA" (a 6-year-old speaker): tiny.en hears "Cajun loves China" without help.
KATE = ("speechocean762", "audio", "000030024.flac")
NAMES = "Kate, Tina, Layla."


@pytest.fixture(scope="module")
def kate():
    from conftest import require_shared
    from duetto.audio import load_audio

    return load_audio(require_shared(*KATE))


@pytest.mark.parametrize("words", [False, True], ids=["trimmed-window", "word-timestamps"])
def test_a_prompt_setting_with_domain_words_changes_decoding(asr, kate, words):
    prompted = WhisperASR(ASRSettings(prompt=NAMES))
    assert "kate" not in asr.transcribe(kate, words=words).text.lower()
    assert prompted.transcribe(kate, words=words).text.lower().startswith("kate loves china")


def test_nbest_gives_the_beams_best_hypotheses_with_the_transcript_first(asr, kate):
    nbest = WhisperASR(ASRSettings(nbest=5))
    out = nbest.transcribe(kate)
    assert len(out.alternatives) == 5 and out.alternatives[0][0] == out.text
    scores = [score for _, score in out.alternatives]  # mean token log-probabilities
    assert scores == sorted(scores, reverse=True) and scores[0] < 0
    # What the transcript missed, the child's name, is among the beam's other hypotheses.
    assert "kate" not in out.text.lower()
    assert any(t.lower().startswith("kate loves china") for t, _ in out.alternatives[1:])
    # The transcript is a beam of 5's; partials (nbest=1) and the default setting get none.
    assert WhisperASR(ASRSettings(beam_size=5)).transcribe(kate).text == out.text
    assert nbest.transcribe(kate, nbest=1).alternatives == ()
    assert asr.transcribe(kate).alternatives == ()


def test_a_prompt_given_to_transcribe_overrides_the_setting(kate):
    prompted = WhisperASR(ASRSettings(prompt=NAMES))
    assert "kate" not in prompted.transcribe(kate, prompt="").text.lower()
    assert "kate" in WhisperASR(ASRSettings()).transcribe(kate, prompt=NAMES).text.lower()


@pytest.mark.parametrize("words", [False, True], ids=["trimmed-window", "word-timestamps"])
def test_a_beam_size_given_to_transcribe_overrides_the_setting(asr, kate, words):
    beams = (1, 2, 5)
    by_setting = {n: WhisperASR(ASRSettings(beam_size=n)).transcribe(kate, words=words).text
                  for n in beams}  # fmt: skip
    assert len(set(by_setting.values())) > 1  # the beam changes this transcript: it shows
    assert {n: asr.transcribe(kate, words=words, beam_size=n).text for n in beams} == by_setting
    wide = WhisperASR(ASRSettings(beam_size=5))
    assert wide.transcribe(kate, words=words, beam_size=1).text == by_setting[1]


def test_the_level_filter_drops_a_quiet_background_talker(speak):
    # Another talker 20 dB down, then the user: tiny.en transcribes both; words more than 10 dB
    # under the utterance's loud level are dropped.
    import numpy as np

    background = 0.1 * speak("The weather will be sunny tomorrow afternoon.")
    user = speak("What is my account balance?")
    audio = np.concatenate([background, np.zeros(4000, np.float32), user]).astype(np.float32)
    heard = WhisperASR(ASRSettings()).transcribe(audio).text.lower()
    assert "weather" in heard and "balance" in heard, heard
    filtered = WhisperASR(ASRSettings(min_word_level_db=-10.0)).transcribe(audio)
    assert filtered.text.lower().rstrip("?") == "what is my account balance", filtered.text
    assert [w.word for w in filtered.words][-1] == "balance?"


def test_the_loop_guard_decodes_a_repetition_loop_again():
    # "BILL LIKES YELLOW" under white noise at 0 dB: with word timestamps tiny.en loops on
    # "a little bit of"; the guard's re-decode at temperature 0.2 does not.
    from conftest import require_shared
    from duetto.asr.whisper import MAX_COMPRESSION_RATIO, compression_ratio
    from duetto.audio import load_audio
    from duetto.data.noise import mix_at_snr, noise_source, stable_rng

    clean = load_audio(require_shared("speechocean762", "audio", "000920002.flac"))
    noise = noise_source("white").noise(len(clean), stable_rng(0, "000920002", "white", 0.0))
    audio = mix_at_snr(clean, noise, 0.0).audio
    looped = WhisperASR(ASRSettings(loop_guard=False)).transcribe(audio, words=True).text
    assert compression_ratio(looped) > MAX_COMPRESSION_RATIO, looped
    guarded = WhisperASR(ASRSettings(loop_guard=True)).transcribe(audio, words=True).text
    assert compression_ratio(guarded) <= MAX_COMPRESSION_RATIO, guarded


def test_settings_that_decode_differently_get_their_own_asr():
    from duetto.asr import load_asr
    from duetto.config import ASRSettings

    plain = load_asr(ASRSettings())
    assert load_asr(ASRSettings()) is plain
    assert load_asr(ASRSettings(prompt="Tesco, Barclays, overdraft")) is not plain
    assert load_asr(ASRSettings(min_word_prob=0.3)) is not plain


def test_the_snr_gate_filters_only_noisy_audio(speak):
    # The quiet background talker above, in a clean recording: with the gate, the estimated SNR
    # is high and every word stays. With white noise under it the gate opens and the level
    # filter drops the background talker as without a gate.
    import numpy as np

    from duetto.asr.whisper import estimated_snr
    from duetto.data.noise import coloured_noise, mix_at_snr, stable_rng

    background = 0.1 * speak("The weather will be sunny tomorrow afternoon.")
    user = speak("What is my account balance?")
    clean = np.concatenate([background, np.zeros(4000, np.float32), user]).astype(np.float32)
    noise = coloured_noise("white", len(clean), stable_rng(0, "gate"))
    noisy = mix_at_snr(clean, noise, 10.0).audio
    gate = 20.0
    assert estimated_snr(clean) > gate > estimated_snr(noisy)
    filters = {"min_word_level_db": -10.0}
    gated = WhisperASR(ASRSettings(**filters, filter_below_snr_db=gate))
    always = WhisperASR(ASRSettings(**filters))
    assert "weather" in gated.transcribe(clean).text.lower()
    assert "weather" not in always.transcribe(clean).text.lower()
    assert gated.transcribe(noisy).text == always.transcribe(noisy).text
    assert "weather" not in gated.transcribe(noisy).text.lower()
