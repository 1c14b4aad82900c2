"""Shared fixtures: one scorer for the whole session and real speechocean762 dev recordings."""

import os

import pytest


@pytest.fixture(scope="session")
def ocean(shared_data):
    path = shared_data / "speechocean762"
    if not path.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"shared data missing: {path}")
        pytest.skip(f"shared data missing: {path}")
    return path


@pytest.fixture(scope="session")
def scorer():
    from duetto.apps.tutor.scoring import Scorer

    return Scorer()


@pytest.fixture(scope="session")
def dev_audio(ocean):
    """get(utt_id) -> (16 kHz audio, prompt text, human utterance scores) from speechocean762 dev."""
    from duetto.apps.tutor import corpus
    from duetto.audio import load_audio

    utts = {u.id: u for u in corpus.load(ocean, "dev")}
    cache = {}

    def get(utt_id: str):
        if utt_id not in cache:
            u = utts[utt_id]
            cache[utt_id] = (load_audio(u.audio), u.text, u.scores)
        return cache[utt_id]

    return get
