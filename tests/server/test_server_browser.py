"""The web page in a real browser: Debian's Chromium, driven by Playwright, with a fake microphone
that speaks a question made by our TTS. The page must show the question's transcript and the
agent's reply, and play the reply's audio."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from duetto.audio import SAMPLE_RATE, resample, write_wav

CHROMIUM = os.environ.get("DUETTO_CHROMIUM", "/usr/bin/chromium")
# Chromium's fake capture device plays this file; 48 kHz is its native capture rate.
MIC_RATE = 48_000
QUESTION = "What is the capital of Italy?"
# A browser test waits on ASR, the LLM and TTS on a busy CI machine.
TIMEOUT_MS = 150_000


def browser_flags(wav: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
    ]


@pytest.fixture(scope="module")
def chromium():
    if not shutil.which(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p.chromium


def test_page_talks_with_the_agent(server, speak, chromium, tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    question = speak(QUESTION)
    mic = np.concatenate(
        [np.zeros(SAMPLE_RATE, np.float32), question, np.zeros(40 * SAMPLE_RATE, np.float32)]
    )
    wav = write_wav(out / "mic.wav", resample(mic, SAMPLE_RATE, MIC_RATE), MIC_RATE)
    browser = chromium.launch(executable_path=CHROMIUM, headless=True, args=browser_flags(wav))
    try:
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.goto(f"{server.url}/")
        page.get_by_role("button", name="Start conversation").click()
        page.wait_for_function(
            "document.querySelector('#log .user .text')?.textContent.length > 0",
            timeout=TIMEOUT_MS,
        )
        page.wait_for_selector("#log .turn.done", timeout=TIMEOUT_MS)
        page.wait_for_function(
            "Number(document.querySelector('#played').dataset.seconds) > 0.5", timeout=TIMEOUT_MS
        )
        user = page.locator("#log .user .text").first.inner_text()
        agent = page.locator("#log .agent .text").first.inner_text()
        latency = page.locator("#log .latency").first.get_attribute("aria-label")
        played = float(page.locator("#played").get_attribute("data-seconds"))
        page.screenshot(path=str(out / "page.png"), full_page=True)
        print(f"screenshot: {out / 'page.png'}")
    finally:
        browser.close()
    assert not problems, problems
    assert "capital" in user.lower() and "italy" in user.lower(), user
    assert len(agent.split()) >= 2, agent
    assert re.search(r"voice-to-voice \d+ ms", latency), latency
    assert played > 0.5
