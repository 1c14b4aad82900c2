"""The learned word filter (asr.word_filter): its weights file, and what it does to real audio
through the real model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from duetto.asr.whisper import WhisperASR
from duetto.asr.word_filter import FEATURES, LearnedWordFilter, word_features
from duetto.config import ASRSettings
from duetto.errors import ModelNotFoundError
from duetto.frames import Word

# A speaker held out of both bundled-robust's training and the filter's fit set (the filter's
# threshold was chosen on this very clip among 100 others: bench/word_filter.py's held set).
# "AND PEOPLE WERE BEGINNING TO SAY ITS OF YOU"
USER = ("speechocean762", "audio", "030830013.flac")
USER_SPEAKER = "3083"
GATE_DB = 20.0


def _audio(parts):
    from conftest import require_shared
    from duetto.audio import load_audio

    return load_audio(require_shared(*parts)).astype(np.float32)


@pytest.fixture(scope="module")
def plain():
    return WhisperASR(ASRSettings(model="bundled-robust"))


@pytest.fixture(scope="module")
def robust():
    """The noisy-room settings: bundled-robust, the learned filter under the 20 dB gate."""
    return WhisperASR(
        ASRSettings(model="bundled-robust", word_filter="learned", filter_below_snr_db=GATE_DB)
    )


@pytest.fixture(scope="module")
def babble_5db():
    """USER in six other train talkers at 5 dB, mixed as bench/word_filter.py mixes it."""
    from conftest import require_shared
    from duetto.data.noise import mix_at_snr, noise_source, stable_rng

    clean = _audio(USER)
    babble = noise_source("babble", require_shared("speechocean762", "train.jsonl"))
    rng = stable_rng(0, "030830013", "babble", 5.0)
    return mix_at_snr(clean, babble.noise(len(clean), rng, USER_SPEAKER), 5.0).audio


def test_the_shipped_weights_load_with_their_threshold():
    learned = LearnedWordFilter.load("learned")
    n = len(FEATURES)
    assert learned.coef.shape == (n if learned.degree == 1 else n + n * (n + 1) // 2,)
    assert 0.0 < learned.threshold < 1.0


def test_weights_round_trip_and_other_features_are_refused(tmp_path):
    learned = LearnedWordFilter.load("learned")
    path = tmp_path / "filter.npz"
    learned.save(path)
    again = LearnedWordFilter.load(str(path))
    assert np.array_equal(again.coef, learned.coef) and again.threshold == learned.threshold
    other = dict(np.load(path))
    other["features"] = np.array(FEATURES[:-1])
    np.savez(tmp_path / "other.npz", **other)
    with pytest.raises(ModelNotFoundError):
        LearnedWordFilter.load(str(tmp_path / "other.npz"))


def test_a_speaker_cue_filter_round_trips(tmp_path):
    from duetto.asr.word_filter import SPEAKER_FEATURES

    n = len(FEATURES) + len(SPEAKER_FEATURES)
    rng = np.random.default_rng(0)
    made = LearnedWordFilter(np.zeros(n), np.ones(n), rng.normal(size=n), 0.1, 0.5, speaker=True)
    path = tmp_path / "speaker.npz"
    made.save(path)
    again = LearnedWordFilter.load(str(path))
    assert again.speaker and not again.nbest
    assert again.feature_names == FEATURES + SPEAKER_FEATURES
    assert np.array_equal(again.coef, made.coef)
    swapped = dict(np.load(path))
    swapped["features"] = np.array(FEATURES + SPEAKER_FEATURES[::-1])
    np.savez(tmp_path / "swapped.npz", **swapped)
    with pytest.raises(ModelNotFoundError):
        LearnedWordFilter.load(str(tmp_path / "swapped.npz"))


def test_the_speaker_cue_tells_the_user_from_a_quieter_talker():
    # The user's sentence, then another train speaker (a 6-year-old boy) 12 dB quieter: words
    # in the user's voice are nearer the clip's loud frames than its quiet ones; the other
    # talker's are not. (In six-talker babble the cue is much weaker: docs/robustness.md.)
    from duetto.asr.word_filter import speaker_similarity

    user = _audio(USER)
    other = _audio(("speechocean762", "audio", "000010011.flac"))
    other *= np.sqrt(np.mean(user**2) / np.mean(other**2)) * 10 ** (-12 / 20)
    clip = np.concatenate([user, other])
    t_user, t_other = len(user) / 16000, len(other) / 16000
    centres = [t_user * f for f in (0.3, 0.5, 0.7)] + [
        t_user + t_other * f for f in (0.3, 0.5, 0.7)
    ]
    words = [Word("w", c - 0.15, c + 0.15, 0.5) for c in centres]
    sims = speaker_similarity(words, clip)
    assert sims.shape == (6, 2)
    contrast = sims[:, 0] - sims[:, 1]  # nearer the loud frames than the quiet ones
    assert contrast[:3].mean() > contrast[3:].mean() + 0.1, contrast


def test_features_have_one_row_per_word():
    audio = np.random.default_rng(0).normal(0, 0.05, 32000).astype(np.float32)
    words = [Word("yes", 0.1, 0.4, 0.9), Word("no", 0.5, 0.9, 0.2)]
    rows = word_features(words, audio, 0.1)
    assert rows.shape == (2, len(FEATURES))
    assert np.isfinite(rows).all()
    assert word_features([], audio).shape == (0, len(FEATURES))


def test_nbest_agreement_is_the_weighted_share_of_hypotheses_with_the_word():
    from duetto.asr.word_filter import nbest_agreement

    words = [Word("Four,", 0.0, 0.3), Word("seven", 0.3, 0.6), Word("there.", 0.6, 0.9)]
    equal = [("Four, seven there.", -0.5), ("four seven", -0.5)]
    assert nbest_agreement(words, equal).tolist() == [1.0, 1.0, 0.5]
    assert nbest_agreement(words, []).tolist() == [1.0, 1.0, 1.0]


def test_a_clean_clip_keeps_its_words(robust, plain):
    from duetto.asr.whisper import estimated_snr

    audio = _audio(USER)
    assert estimated_snr(audio) >= GATE_DB
    heard = plain.transcribe(audio).text
    assert robust.transcribe(audio).text == heard, heard


def test_background_talkers_words_are_dropped(robust, plain, babble_5db):
    # tiny.en writes two of the babble's words ("it will") into the user's sentence; the filter
    # drops them and keeps every word of the user's that was heard right.
    from duetto.asr.whisper import estimated_snr

    assert estimated_snr(babble_5db) < GATE_DB
    heard = plain.transcribe(babble_5db).text
    assert heard == "And it will want to begin to see this of you.", heard
    kept = robust.transcribe(babble_5db).text
    assert kept == "And want to begin to see this of you.", kept


def test_its_threshold_can_be_set(plain, babble_5db):
    # Threshold 0 keeps every word; 1 drops them all.
    every = ASRSettings(model="bundled-robust", word_filter="learned", word_filter_threshold=0.0)
    none = ASRSettings(model="bundled-robust", word_filter="learned", word_filter_threshold=1.0)
    assert WhisperASR(every).transcribe(babble_5db).text == plain.transcribe(babble_5db).text
    assert WhisperASR(none).transcribe(babble_5db).text == ""


def test_noisy_audio_can_get_its_own_beam(plain, babble_5db):
    # asr.noisy_beam_size: beam 5 under the gate, the usual greedy decode above it.
    wide = WhisperASR(
        ASRSettings(model="bundled-robust", noisy_beam_size=5, filter_below_snr_db=GATE_DB)
    )
    clean = _audio(USER)
    assert wide.transcribe(clean).text == plain.transcribe(clean).text
    assert wide.transcribe(babble_5db).text == plain.transcribe(babble_5db, beam_size=5).text


def test_noisy_audio_can_be_decoded_at_several_speeds(plain, babble_5db):
    # asr.noisy_speeds: under the gate the clip is also decoded played at 0.9 and 1.1 and the
    # decoding nearest the other two in words is kept; above it, one decode as before.
    from duetto.asr.whisper import _medoid
    from duetto.data.augment import speed_perturb

    several = WhisperASR(
        ASRSettings(model="bundled-robust", noisy_speeds=(0.9, 1.1), filter_below_snr_db=GATE_DB)
    )
    heard = []  # the length of every playback decoded
    decode = several._recognise
    several._recognise = lambda audio, *args: heard.append(len(audio)) or decode(audio, *args)
    clean = _audio(USER)
    assert several.transcribe(clean).text == plain.transcribe(clean).text
    assert heard == [len(clean)]
    heard.clear()
    out = several.transcribe(babble_5db)
    n = len(babble_5db)
    assert heard[0] == n and heard[1:] == [
        pytest.approx(n / 0.9, abs=2),
        pytest.approx(n / 1.1, abs=2),
    ]
    decodings = [plain.transcribe(a) for a in
                 (babble_5db, speed_perturb(babble_5db, 0.9), speed_perturb(babble_5db, 1.1))]  # fmt: skip
    assert len({d.text for d in decodings}) == 3  # each playback is heard differently
    assert out.text == _medoid(decodings).text
    assert out.duration == pytest.approx(n / 16000)


def test_a_language_model_can_choose_among_the_speed_decodings(plain, babble_5db):
    # asr.noisy_lm: the speed decodings and their beams' four other best hypotheses are the
    # candidates, weighed by Gemma; clean audio is decoded once and Gemma is not asked.
    from duetto.asr.whisper import lm_choice
    from duetto.data.augment import speed_perturb

    choosing = WhisperASR(
        ASRSettings(
            model="bundled-robust",
            noisy_speeds=(0.9, 1.1),
            filter_below_snr_db=GATE_DB,
            noisy_lm="bundled",
        )
    )
    asked = []
    score = choosing.noisy_lm.sentence_logprobs
    choosing.noisy_lm.sentence_logprobs = lambda texts: asked.append(texts) or score(texts)
    clean = _audio(USER)
    assert choosing.transcribe(clean).text == plain.transcribe(clean).text
    assert asked == []
    out = choosing.transcribe(babble_5db)
    decodings = [plain.transcribe(a, nbest=5) for a in
                 (babble_5db, speed_perturb(babble_5db, 0.9), speed_perturb(babble_5db, 1.1))]  # fmt: skip
    assert len(asked) == 1 and len(asked[0]) > len(decodings)  # alternatives were candidates
    weights = (choosing.settings.noisy_lm_weight, choosing.settings.noisy_lm_word_bonus)
    assert out.text == lm_choice(decodings, choosing.noisy_lm, *weights).text
    assert out.text in asked[0] and out.alternatives == ()
    assert out.duration == pytest.approx(len(babble_5db) / 16000)
    # a partial transcript of the same audio: one greedy decode, Gemma not asked
    asked.clear()
    assert choosing.transcribe(babble_5db, partial=True).text == plain.transcribe(babble_5db).text
    assert asked == []
    # audio too long for the trimmed window has no beam alternatives: the medoid, no Gemma
    long = np.tile(babble_5db, int(30 * 16000 / len(babble_5db)) + 1)
    assert choosing.transcribe(long).text and asked == []


def test_a_second_model_decodes_the_same_playbacks(plain, babble_5db):
    # asr.noisy_second_model: under the gate the second model (Whisper base, self-distilled)
    # decodes the clip at 1.0 and the same speeds, and the medoid is over all six decodings;
    # above the gate, one decode by the first model as before.
    from duetto.asr.whisper import _medoid
    from duetto.data.augment import speed_perturb

    settings = ASRSettings(
        model="bundled-robust",
        noisy_speeds=(0.9, 1.1),
        filter_below_snr_db=GATE_DB,
        noisy_second_model="bundled-base-robust",
    )
    both = WhisperASR(settings)
    assert both.second.multilingual and not both.multilingual
    heard = []  # (which model, the length of the playback)
    for name, asr in (("tiny", both), ("base", both.second)):
        decode = asr._recognise
        asr._recognise = (lambda d, n: lambda a, *args: heard.append((n, len(a))) or d(a, *args))(
            decode, name
        )
    clean = _audio(USER)
    assert both.transcribe(clean).text == plain.transcribe(clean).text
    assert heard == [("tiny", len(clean))]
    heard.clear()
    out = both.transcribe(babble_5db)
    assert [name for name, _ in heard] == ["tiny"] * 3 + ["base"] * 3
    assert [n for _, n in heard[3:]] == [n for _, n in heard[:3]]
    second = WhisperASR(ASRSettings(model="bundled-base-robust"))
    playbacks = (babble_5db, speed_perturb(babble_5db, 0.9), speed_perturb(babble_5db, 1.1))
    decodings = [plain.transcribe(a) for a in playbacks] + [second.transcribe(a) for a in playbacks]
    assert out.text == _medoid(decodings).text
    assert out.duration == pytest.approx(len(babble_5db) / 16000)
    assert both.transcribe(babble_5db, partial=True).text == plain.transcribe(babble_5db).text


def test_the_second_model_needs_the_speeds_and_not_the_language_model():
    from duetto.errors import ConfigError

    with pytest.raises(ConfigError, match="noisy_speeds"):
        WhisperASR(ASRSettings(model="bundled-robust", noisy_second_model="bundled-base-robust"))
    with_speeds = ASRSettings(model="bundled-robust", noisy_speeds=(0.9,),
                              filter_below_snr_db=GATE_DB)  # fmt: skip
    with pytest.raises(ConfigError, match="cannot be combined"):
        WhisperASR(
            replace(with_speeds, noisy_lm="bundled", noisy_second_model="bundled-base-robust")
        )
    with pytest.raises(ModelNotFoundError, match="asr.noisy_second_model.*folder not found"):
        WhisperASR(replace(with_speeds, noisy_second_model="/nope/model"))


def test_the_language_model_choice_needs_the_speeds():
    from duetto.errors import ConfigError

    with pytest.raises(ConfigError, match="noisy_speeds"):
        WhisperASR(ASRSettings(model="bundled-robust", noisy_lm="bundled"))
    with pytest.raises(ConfigError, match="filter_below_snr_db"):  # no audio would be noisy
        WhisperASR(ASRSettings(model="bundled-robust", noisy_lm="bundled", noisy_speeds=(0.9,)))
    with pytest.raises(ModelNotFoundError, match="asr.noisy_lm.*nope.gguf") as caught:
        WhisperASR(
            ASRSettings(
                model="bundled-robust",
                noisy_lm="/nope.gguf",
                noisy_speeds=(0.9,),
                filter_below_snr_db=GATE_DB,
            )
        )
    assert "llm-url" not in (caught.value.hint or "")


def test_the_medoid_and_time_scaling_of_speed_decodings():
    from duetto.asr import Segment, Transcription
    from duetto.asr.whisper import _medoid, _unscaled, noisy_speeds
    from duetto.errors import ConfigError

    def decoding(text, end=1.0):
        words = (Word(text.split()[0], 0.5, end),)
        return Transcription(text, (Segment(0.0, end, text, words),), "en", end, 0.1)

    a, b, c = decoding("we call it bear"), decoding("we call it a bear"), decoding("it will")
    assert _medoid([a, b, c]).text in (a.text, b.text)
    assert _medoid([c, a, b]) is a  # a tie keeps the earlier decoding
    slow = _unscaled(decoding("we call it bear", end=2.0), 0.5, 1.0)
    assert slow.segments[0].end == 1.0 and slow.words[0].start == 0.25 and slow.duration == 1.0
    assert noisy_speeds("0.95, 1.05") == (0.95, 1.05) and noisy_speeds(None) == ()
    with pytest.raises(ConfigError, match="noisy_speeds"):
        noisy_speeds("0.9,7")


def test_the_evaluator_passes_the_filter_on():
    from duetto.data.evaluate import EvalConfig

    config = EvalConfig(word_filter="learned", filter_below_snr_db=20.0, noisy_lm="bundled")
    assert "word-filter=learned" in config.label and "noisy-lm=bundled" in config.label
