"""Voiceprints: the enrolled speaker is accepted, another speaker and our TTS are rejected."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from duetto.audio import load_audio, write_wav
from duetto.errors import DuettoError, NoSpeechError
from duetto.safety.voiceprint import (
    UnknownSpeakerError,
    VoiceprintStore,
    centred,
    enroll,
    load_domain_mean,
    score,
    verify,
)

pytest.importorskip("resemblyzer", reason="needs the optional extra duetto[safety]")


@pytest.fixture(scope="module")
def speakers(shared_data):
    """Two adult women of speechocean762 dev (same gender and age band: a hard impostor)."""
    rows = [json.loads(line) for line in open(shared_data / "speechocean762" / "dev.jsonl")]
    by = defaultdict(list)
    for r in rows:
        if r["gender"] == "f" and r["age"] >= 12:
            by[r["speaker"]].append(r)
    a, b = sorted(by)[:2]

    def audio(r):
        return load_audio(shared_data / "speechocean762" / r["audio"])

    return {
        "enrol": [audio(r) for r in by[a][:3]],
        "same": [audio(r) for r in by[a][3:6]],
        "other": [audio(r) for r in by[b][3:6]],
        "prompt": by[a][0]["text"],
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory, speakers):
    store = VoiceprintStore(tmp_path_factory.mktemp("vp") / "voiceprints.sqlite")
    enroll("alice", speakers["enrol"], store)
    return store


def test_enrolled_speaker_is_accepted(store, speakers):
    results = [verify("alice", clip, store) for clip in speakers["same"]]
    assert sum(r.accepted for r in results) >= 2, [(r.score, r.reason) for r in results]
    assert not any(r.synthetic for r in results)


def test_other_speaker_is_rejected(store, speakers):
    results = [verify("alice", clip, store) for clip in speakers["other"]]
    assert sum(r.accepted for r in results) <= 1, [(r.score, r.reason) for r in results]


def test_watermarked_tts_never_verifies(store, speakers, speak):
    """A replayed TTS imitation of the enrolled prompt carries our watermark: flagged.

    ``speak`` is the engine's default TTS, which marks everything it says."""
    clip = speak(speakers["prompt"].capitalize())
    r = verify("alice", clip, store, threshold=-100.0)  # even with a threshold anyone passes
    assert r.synthetic and not r.accepted
    assert "watermark" in r.reason


def test_watermarked_clip_cannot_be_enrolled(store, speak):
    clip = speak("Hello, my name is Alice and this is my voice.")
    with pytest.raises(DuettoError, match="watermark"):
        enroll("mallory", [clip], store)


def test_store_round_trip_and_errors(store, tmp_path):
    assert "alice" in store.names()
    assert store.load("alice").shape == (3, 256)  # one raw embedding per enrolment clip
    with pytest.raises(UnknownSpeakerError, match="enrol first"):
        verify("nobody", np.zeros(16_000, np.float32), store)
    with pytest.raises(NoSpeechError):
        enroll("silent", [np.zeros(32_000, np.float32)], VoiceprintStore(tmp_path / "s.sqlite"))
    with pytest.raises(DuettoError, match="at least one"):
        enroll("empty", [], VoiceprintStore(tmp_path / "s.sqlite"))


def test_old_single_embedding_row_still_verifies(store, speakers, tmp_path):
    """A store row written before per-utterance storage (one joined embedding) loads as 1x256."""
    old = VoiceprintStore(tmp_path / "old.sqlite")
    old.save("alice", store.load("alice").mean(axis=0), 3)
    assert old.load("alice").shape == (1, 256)
    assert verify("alice", speakers["same"][0], old).score > -1.0


def test_centring_uses_the_shipped_train_mean():
    """The back-end file ships with the package, and centring changes the scores it is fed."""
    mean = load_domain_mean()
    assert mean is not None and mean.shape == (256,)
    rng = np.random.default_rng(0)
    a, b = mean + 0.02 * rng.normal(size=(2, 256)).astype(np.float32)
    assert np.isclose(np.linalg.norm(centred(a)), 1.0, atol=1e-5)
    plain = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert (
        plain > 0.7 and abs(score(a[None], b)) < 0.3
    )  # what every speaker shares no longer counts


def test_short_enrolment_clip_names_the_clip(tmp_path, speakers):
    with pytest.raises(NoSpeechError, match="enrolment clip 2"):
        enroll("short", [speakers["enrol"][0], speakers["enrol"][1][:4000]],
               VoiceprintStore(tmp_path / "s.sqlite"))  # fmt: skip


def test_fused_score_is_used_and_separates_speakers(store, speakers):
    """With the shipped UBM and cohort, enrolment keeps GMM statistics and the cohort side of
    S-norm, and verify fuses both normalised systems at the cohort's threshold."""
    from duetto.safety import cohort
    from duetto.safety.gmm_ubm import load_backend

    backend, shipped = load_backend(), cohort.load()
    assert backend is not None and shipped is not None and 0.0 < shipped.weight < 1.0
    assert shipped.ubm == backend.ubm.fingerprint  # the cohort was adapted from the shipped UBM
    assert store.load_ubm_stats("alice", backend.ubm.fingerprint) is not None
    group, enrol_side = store.load_cohort_stats("alice", shipped.fingerprint)
    assert group in cohort.GROUPS and enrol_side.shape == (4,) and np.all(enrol_side[1::2] > 0)
    same = [verify("alice", clip, store) for clip in speakers["same"]]
    other = [verify("alice", clip, store) for clip in speakers["other"]]
    assert all(r.llr is not None and r.threshold == shipped.threshold for r in same + other)
    assert all(r.group == group for r in same + other)
    # the GMM-UBM alone already ranks the enrolled speaker's clips above the impostor's
    assert min(r.llr for r in same) > max(r.llr for r in other), [
        (r.llr, r.centred_cosine) for r in same + other
    ]
    assert np.mean([r.score for r in same]) > np.mean([r.score for r in other]) + 1.0


def test_declared_group_picks_the_cohort(speakers, tmp_path):
    """A declared group is stored and used; the normalisation, and so the score, depends on it."""
    store = VoiceprintStore(tmp_path / "g.sqlite")
    enroll("alice", speakers["enrol"], store, group="female")
    enroll("alice-as-child", speakers["enrol"], store, group="child")
    a = verify("alice", speakers["same"][0], store)
    b = verify("alice-as-child", speakers["same"][0], store)
    assert (a.group, b.group) == ("female", "child")
    assert np.isclose(a.llr, b.llr) and np.isclose(a.centred_cosine, b.centred_cosine)
    assert not np.isclose(a.score, b.score)
    with pytest.raises(DuettoError, match="unknown speaker group"):
        enroll("bob", speakers["enrol"], store, group="adult")


def test_enrolment_before_the_cohort_keeps_the_plain_fusion(store, speakers, tmp_path):
    """A row with GMM statistics but no cohort statistics (written before S-norm) is scored by
    the un-normalised fusion at its own threshold."""
    from duetto.safety.gmm_ubm import load_backend

    backend = load_backend()
    old = VoiceprintStore(tmp_path / "pre-cohort.sqlite")
    stats = store.load_ubm_stats("alice", backend.ubm.fingerprint)
    old.save("alice", store.load("alice"), 3, (backend.ubm.fingerprint, stats))
    r = verify("alice", speakers["same"][0], old)
    assert r.group is None and r.threshold == backend.threshold
    assert np.isclose(r.score, backend.fuse(r.centred_cosine, r.llr))


def test_group_classifier_and_snorm():
    """The cohort's group classifier gets most of its own speakers right; S-norm is symmetric."""
    from duetto.safety import cohort

    shipped = cohort.load()
    guessed = [shipped.predict_group(v) for v in shipped.res]
    assert np.mean([g == t for g, t in zip(guessed, shipped.groups, strict=True)]) > 0.8
    assert set(shipped.groups) == set(cohort.GROUPS)
    assert cohort.snorm(3.0, (1.0, 2.0), (2.0, 1.0)) == pytest.approx((1.0 + 1.0) / 2)
    assert cohort.group_of("m", 9) == "child" and cohort.group_of("F", 30) == "female"
    with pytest.raises(ValueError, match="unknown gender"):
        cohort.group_of("x", 30)


def test_llr_many_matches_llr():
    from duetto.safety.gmm_ubm import load_backend

    ubm = load_backend().ubm
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, ubm.means.shape[1]))
    models = np.stack([ubm.map_means(ubm.stats(x[k::3]), 8.0) for k in range(3)])
    many = ubm.llr_many(models, x)
    assert np.allclose(many, [ubm.llr(m, x) for m in models])
    assert len(set(np.round(many, 6))) == 3  # each model scored on its own


def test_fusion_switch_and_old_rows_score_with_resemblyzer_alone(store, speakers, tmp_path):
    """``fusion=False``, and an enrolment stored without GMM statistics, give the centred cosine."""
    from duetto.safety.voiceprint import THRESHOLD

    off = verify("alice", speakers["same"][0], store, fusion=False)
    assert off.llr is None and off.threshold == THRESHOLD and off.score == off.centred_cosine
    old = VoiceprintStore(tmp_path / "old.sqlite")
    old.save("alice", store.load("alice"), 3)  # a row as written before the GMM-UBM
    r = verify("alice", speakers["same"][0], old)
    assert r.llr is None and np.isclose(r.score, off.score, atol=1e-5)


def test_cli_verify_reports_both_fused_scores(store, speakers, tmp_path, capsys):
    from duetto.cli import main

    clip = write_wav(tmp_path / "same.wav", speakers["same"][0], 16_000)
    code = main(["safety", "verify", "alice", str(clip), "--store", str(store.path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == (0 if data["accepted"] else 1)
    assert {"centred_cosine", "llr", "group"} <= data.keys()  # the fused score's two parts
    assert isinstance(data["llr"], float)


def test_cli_enroll_with_a_declared_group(speakers, tmp_path, capsys):
    from duetto.cli import main

    files = [
        str(write_wav(tmp_path / f"e{i}.wav", a, 16_000)) for i, a in enumerate(speakers["enrol"])
    ]
    test = str(write_wav(tmp_path / "t.wav", speakers["same"][0], 16_000))
    store = str(tmp_path / "cli.sqlite")
    assert main(["safety", "enroll", "carol", *files, "--group", "female", "--store", store]) == 0
    capsys.readouterr()
    main(["safety", "verify", "carol", test, "--store", store, "--json"])
    assert json.loads(capsys.readouterr().out)["group"] == "female"
    with pytest.raises(SystemExit):  # argparse refuses a group it does not know, with usage
        main(["safety", "enroll", "carol", *files, "--group", "adult", "--store", store])
    assert "invalid choice" in capsys.readouterr().err
