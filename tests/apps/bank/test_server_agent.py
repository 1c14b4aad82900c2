"""The bank agent offered by ``duetto serve`` (?agent=bank), and its ASR settings for voice calls."""

from __future__ import annotations

from duetto.apps.bank.cli import with_bank_asr
from duetto.apps.bank.nlu import ASR_BEAM_SIZE, ASR_NBEST, ASR_PROMPT
from duetto.asr.adapters import BANK_MODEL
from duetto.config import Settings
from duetto.server.agents import available_agents


def test_the_server_offers_the_bank_agent_one_call_per_session(tmp_path, monkeypatch):
    monkeypatch.setenv("DUETTO_BANK_DB", str(tmp_path / "bank.sqlite3"))
    factory = available_agents()["bank"]
    first, second = factory(Settings()), factory(Settings())
    assert first is not second and first.speculative is False  # money moves on confirmed turns
    reply = " ".join(first.respond("What's my balance?"))
    assert "customer number" in reply.lower()  # identification comes first
    reply = " ".join(first.respond("20481357"))
    assert "passphrase" in reply.lower() or "pin" in reply.lower()
    assert (tmp_path / "bank.sqlite3").exists()
    # Its turns are decoded with the bank's ASR choices (the server's one ASR, per call), the
    # same as with_bank_asr gives `duetto bank`, over the session's settings.
    bank = with_bank_asr(Settings()).asr
    assert first.asr_options == {
        "prompt": bank.prompt, "beam_size": bank.beam_size, "nbest": bank.nbest
    }  # fmt: skip
    assert first.asr_model == bank.model == BANK_MODEL  # its own model, beside the server's
    chosen = Settings()
    chosen.asr.prompt = "My own words."
    chosen.asr.model = "bundled-base"
    assert factory(chosen).asr_options["prompt"] == "My own words."
    assert factory(chosen).asr_model == "bundled-base"  # the caller's choice of model stands


def test_voice_calls_prime_whisper_with_bank_words_a_beam_and_its_nbest_unless_chosen():
    settings = Settings()
    bank = with_bank_asr(settings).asr
    assert bank.prompt == ASR_PROMPT and bank.beam_size == ASR_BEAM_SIZE > 1
    assert 1 < bank.nbest == ASR_NBEST <= bank.beam_size  # the beam's own hypotheses
    # the caller's settings are left as they were
    assert bank.model == BANK_MODEL  # tiny.en adapted to bank calls
    assert settings.asr.prompt is None and settings.asr.beam_size == 1 and settings.asr.nbest == 1
    assert settings.asr.model == "bundled"
    settings.asr.prompt = "My own words."
    settings.asr.model = "bundled-base"
    settings.asr.beam_size = ASR_BEAM_SIZE + 3
    settings.asr.nbest = ASR_NBEST + 2
    bank = with_bank_asr(settings).asr
    assert bank.prompt == "My own words." and bank.beam_size == ASR_BEAM_SIZE + 3
    assert bank.nbest == ASR_NBEST + 2 and bank.model == "bundled-base"
