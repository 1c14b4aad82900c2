"""Per-agent ASR choices on the server: a bank session is transcribed by the bank's adapted model
with its prompt, beam and n-best (and its ``completed`` events carry the n-best); the assistant's
by the server's one ASR with the server's settings."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from duetto.asr import load_asr
from duetto.asr.adapters import BANK_MODEL
from duetto.audio import SAMPLE_RATE

from .conftest import Realtime, realtime_connect

COMPLETED = "conversation.item.input_audio_transcription.completed"


def lead(seconds: float = 0.4) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def one_turn(server, agent: str, audio: np.ndarray, calls: list) -> tuple[dict, list, str]:
    """Speak one turn to ``agent``: its ``completed`` event, the ASR calls made until then, and
    what the agent said."""

    async def main():
        async with realtime_connect(f"{server.ws_url}?agent={agent}") as ws:
            rt = Realtime(ws)
            await rt.next("session.created")
            rt.feed(np.concatenate([lead(), audio]))
            heard = await rt.next(COMPLETED)
            made = list(calls)
            done = await rt.next("response.done", timeout=120)
            rt.stop_feeding()
            return heard, made, done["response"]["duetto"]["agent_text"]

    calls.clear()
    return asyncio.run(main())


def test_a_bank_session_decodes_with_the_banks_asr_choices_and_the_assistant_does_not(
    server, speak, monkeypatch, tmp_path
):
    from duetto.apps.bank.nlu import ASR_BEAM_SIZE, ASR_NBEST, ASR_PROMPT
    from duetto.apps.bank.responder import bank_asr_options

    if "bank" not in server.state.agents:
        pytest.skip("the bank application does not import here")
    monkeypatch.setenv("DUETTO_BANK_DB", str(tmp_path / "bank.sqlite3"))
    settings = server.state.settings.asr
    assert settings.prompt is None and settings.nbest == 1 and settings.model == "bundled"
    # The bank's sessions share its adapted model (loaded beside the server's on first use),
    # the assistant's the server's one ASR.
    engine_asr = server.state.engine.asr
    bank_asr = load_asr(replace(settings, model=BANK_MODEL))
    assert bank_asr is not engine_asr and bank_asr.settings.model == BANK_MODEL
    calls: list[dict] = []

    def spy_on(asr, name):
        transcribe = asr.transcribe

        def spy(audio, **kwargs):
            calls.append({"asr": name, **kwargs})
            return transcribe(audio, **kwargs)

        monkeypatch.setattr(asr, "transcribe", spy)

    spy_on(engine_asr, "engine")
    spy_on(bank_asr, "bank")
    question = speak("Hello, I would like to check the balance of my current account please.")

    heard, made, reply = one_turn(server, "bank", question, calls)
    finals = [c for c in made if c.get("nbest") != 1]
    partials = [c for c in made if c.get("nbest") == 1]
    assert made and all(c.pop("asr") == "bank" for c in made), made
    bank = bank_asr_options(server.state.settings.asr)
    assert bank == {"prompt": ASR_PROMPT, "beam_size": ASR_BEAM_SIZE, "nbest": ASR_NBEST}
    assert finals and all(c == bank for c in finals), made
    # Partials: the prompt, but no n-best, the settings' (cheap) beam and no noisy-audio extras.
    assert all(c == {"nbest": 1, "partial": True, "prompt": ASR_PROMPT} for c in partials), made
    alternatives = heard["alternatives"]
    assert len(alternatives) == ASR_NBEST and alternatives[0]["transcript"] == heard["transcript"]
    scores = [a["logprob"] for a in alternatives]
    assert scores == sorted(scores, reverse=True) and scores[0] < 0
    assert "balance" in heard["transcript"].lower()
    assert "customer number" in reply.lower()  # the bank answered: identification first

    heard, made, _ = one_turn(server, "assistant", question, calls)
    assert made and all(c.pop("asr") == "engine" for c in made), made
    assert made and all(c in ({}, {"nbest": 1, "partial": True}) for c in made), made
    assert {} in made  # the final transcript
    assert "alternatives" not in heard and "balance" in heard["transcript"].lower()
