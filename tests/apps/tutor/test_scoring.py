"""Real pronunciation scoring of speechocean762 dev recordings (speakers never trained on)."""

import numpy as np
import pytest

from duetto.apps.tutor.scoring import InvalidTextError
from duetto.errors import EmptyAudioError, NoSpeechError

GOOD = ("014200011", "014200229")  # human totals 10 and 10
POOR = ("096170013", "096120006")  # human totals 4.4 and 4.4


def test_good_speakers_score_above_poor_speakers(scorer, dev_audio):
    good = [scorer.score(*dev_audio(u)[:2]) for u in GOOD]
    poor = [scorer.score(*dev_audio(u)[:2]) for u in POOR]
    assert min(r.utterance.total for r in good) > max(r.utterance.total for r in poor)
    assert np.mean([r.utterance.accuracy for r in good]) > np.mean(
        [r.utterance.accuracy for r in poor]
    )
    mean_phone = lambda rs: np.mean([p.score for r in rs for p in r.phones])  # noqa: E731
    assert mean_phone(good) > mean_phone(poor)


def test_result_has_every_level(scorer, dev_audio):
    audio, text, _ = dev_audio(GOOD[0])
    r = scorer.score(audio, text)
    assert [w.word for w in r.words if w.miscue != "insertion"] == text.upper().split()
    for w in r.words:
        if w.miscue == "insertion":
            continue
        assert 0 <= w.accuracy <= 10 and 0 <= w.stress <= 10
        assert w.phones and all(0 <= p.score <= 2 and p.label in (0, 1, 2) for p in w.phones)
        assert all(p.start <= p.end <= r.duration + 0.05 for p in w.phones)
    starts = [p.start for p in r.phones]
    assert starts == sorted(starts)
    u = r.utterance
    assert all(0 <= v <= 10 for v in (u.accuracy, u.completeness, u.fluency, u.prosody, u.total))
    assert u.completeness == 10
    assert r.fluency.words_per_minute > 30 and r.fluency.phones_per_second > 2
    assert len(r.tips) <= 2
    assert r.to_dict()["words"][0]["phones"][0]["expected"]


def test_poor_reading_gets_tips_for_worst_phones(scorer, dev_audio):
    r = scorer.score(*dev_audio(POOR[0])[:2])
    assert r.tips, "a 4.4/10 reading should get advice"
    worst = sorted(p.score for p in r.phones)[0]
    assert r.tips[0].score == pytest.approx(worst, abs=1e-6)
    assert r.tips[0].phone.startswith("/") and r.tips[0].word.lower() in r.tips[0].text


def test_text_that_does_not_match_the_audio_drops_completeness(scorer, dev_audio):
    audio, text, _ = dev_audio(GOOD[0])
    right = scorer.score(audio, text)
    wrong = scorer.score(
        audio, text + " and then the elephants quickly climbed seven tall mountains"
    )
    assert wrong.utterance.completeness < right.utterance.completeness
    assert wrong.utterance.total < right.utterance.total
    assert any(w.miscue == "omission" for w in wrong.words)


def test_words_outside_the_lexicon_are_scored(scorer, dev_audio):
    audio, text, _ = dev_audio(GOOD[0])
    r = scorer.score(audio, text + " zorblatter")
    word = r.words[-1] if r.words[-1].miscue != "insertion" else r.words[-2]
    assert word.word == "ZORBLATTER" and word.source in ("espeak", "rules") and word.phones
    assert any("zorblatter" in w for w in r.warnings)


def test_audio_far_longer_than_the_text(scorer, dev_audio):
    audio, text, _ = dev_audio(GOOD[1])
    long = np.concatenate([audio, audio, audio])
    r = scorer.score(long, text.split()[0])
    assert len([w for w in r.words if w.miscue != "insertion"]) == 1
    assert any(w.miscue == "insertion" for w in r.words)


def test_bad_inputs_give_clear_errors(scorer):
    with pytest.raises(EmptyAudioError):
        scorer.score(np.zeros(0, np.float32), "hello")
    with pytest.raises(NoSpeechError):
        scorer.score(np.zeros(16_000 * 2, np.float32), "hello there")
    with pytest.raises(InvalidTextError):
        scorer.score(np.random.default_rng(0).normal(0, 0.1, 16_000).astype(np.float32), " ?! ")


def test_text_in_another_language_is_scored_as_not_read(scorer, dev_audio):
    audio, _, _ = dev_audio(GOOD[0])
    r = scorer.score(audio, "Das ist ein schönes Haus")
    assert [w.word for w in r.words if w.miscue != "insertion"][3] == "SCHÖNES"
    assert r.utterance.completeness <= 2 and r.utterance.total <= 2
    assert all(w.accuracy == 0 for w in r.words if w.miscue == "omission")
