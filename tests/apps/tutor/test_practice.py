"""Practice sessions from recordings, progress in SQLite, sentence choice and the HTML report."""

import random

from duetto.apps.tutor import bank, practice
from duetto.apps.tutor.progress import Attempt, Progress
from duetto.apps.tutor.report import learner_report
from duetto.audio import write_wav


def _attempt(k, total, level=2, wpm=120.0, pauses=0, phones=()):
    words = [{"phones": [{"expected": p, "heard": h, "score": s} for p, h, s in phones]}]
    return Attempt(k, 1, float(k), f"s{k}", level, total, 10.0, total, total, total, wpm, pauses, 0.0,
                   {"words": words}, None)  # fmt: skip


def test_level_goes_up_when_good_and_down_when_poor():
    good = [_attempt(k, 9.0) for k in range(3)]
    assert bank.next_level(good) == 3
    slow = [_attempt(k, 9.0, wpm=60.0) for k in range(3)]
    assert bank.next_level(slow) == 2
    poor = [_attempt(k, 4.0) for k in range(3)]
    assert bank.next_level(poor) == 1
    assert bank.next_level([]) == 1


def test_struggling_learner_gets_sentences_with_weak_phones():
    th = [("TH", "S", 0.3), ("IY", "IY", 2.0)]
    history = [_attempt(k, 5.8, phones=th) for k in range(3)]
    assert bank.weak_phones(history)[0] == "TH"
    picks = [bank.choose(history, random.Random(seed)) for seed in range(5)]
    assert all("TH" in s.phones for s in picks)


def test_session_from_recordings_is_stored_and_reported(tmp_path, scorer, dev_audio):
    files = []
    for k, utt in enumerate(("014200011", "096170013")):
        path = tmp_path / f"take{k}.wav"
        write_wav(path, dev_audio(utt)[0], 16_000)
        files.append(path)
    progress = Progress(tmp_path / "progress.sqlite")
    io = practice.FileIO(files)
    lines = []
    rounds = practice.run("mei", io, rounds=3, progress=progress, scorer=scorer,
                          rng=random.Random(1), show=lines.append)  # fmt: skip
    assert len(rounds) == 2  # the third round found no more recordings
    assert all(r.assessment is not None for r in rounds)
    assert io.said[0].startswith("Please repeat after me.")
    again = Progress(tmp_path / "progress.sqlite").attempts("mei")
    assert [a.id for a in again] == [r.attempt_id for r in rounds]
    assert again[0].assessment["utterance"]["total"] == rounds[0].assessment.utterance.total
    page = learner_report("mei", again)
    assert page.count("data:image/png;base64,") >= 3
    assert "data:audio/wav;base64," in page
    assert "Progress report: mei" in page
