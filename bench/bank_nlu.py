"""Bank NLU quality and speed: BANKING77 test accuracy, NLU++ 4-fold CV F1s, latency, spoken queries.

    nice -n 10 .venv/bin/python bench/bank_nlu.py                 # accuracy, CV F1s, latency
    nice -n 10 .venv/bin/python bench/bank_nlu.py --spoken 300    # + TTS -> ASR -> classify
    nice -n 10 .venv/bin/python bench/bank_nlu.py --nlupp-grid    # choose the NLU++ heads' C

Uses the shipped weights (src/duetto/apps/bank/data/nlu.npz, fitted on train only by
scripts/train_bank_nlu.py). BANKING77 test.csv is read here and nowhere else.
Targets (issue 8): BANKING77 test >= 94.5%; spoken >= 91% clean, >= 88% babble at 5 dB;
intent + slots < 30 ms per utterance.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from duetto.apps.bank.encoder import SentenceEncoder  # noqa: E402
from duetto.apps.bank.nlu import BankNLU  # noqa: E402
from duetto.apps.bank.training import (  # noqa: E402
    ACT_C,
    DEFAULT_CACHE,
    SLOT_C,
    encode_cached,
    load_banking77,
    load_nlupp,
    nlupp_cross_validation,
)

DATA = ROOT.parent / "shared" / "data"
# Utterances timed for latency: enough for a stable median and 95th percentile.
LATENCY_SAMPLES = 200
# Babble: this many overlapping talkers from speechocean762 train (more talkers = less intelligible words).
BABBLE_TALKERS = 4
BABBLE_SNR_DB = 5.0


def banking77_test(nlu: BankNLU, encoder: SentenceEncoder, cache: Path) -> float:
    texts, labels = load_banking77(DATA, "test")
    enc = encode_cached(encoder, texts, cache, "banking77-test")
    x = np.stack([e.sentence for e in enc])
    pred = np.array(nlu.intents.labels)[nlu.intents.logits(x).argmax(1)]
    return float((pred == np.array(labels)).mean())


def nlupp_cv(encoder: SentenceEncoder, cache: Path, grid: bool) -> dict:
    examples = load_nlupp(DATA)
    enc = encode_cached(encoder, [e.text for e in examples], cache, "nlupp")
    labels = sorted({i for e in examples for i in e.intents})
    settings = [(ACT_C, SLOT_C)]
    if grid:
        settings = [(a, s) for a in (0.02, 0.05, 0.1, 0.3) for s in (0.03, 0.1, 0.3)]
    rows = []
    for act_c, slot_c in settings:
        scores = nlupp_cross_validation(enc, examples, labels, act_c, slot_c)
        rows.append({"act_C": act_c, "slot_C": slot_c, "intent_f1": scores.intent_f1, "slot_f1": scores.slot_f1,
                     "per_block": scores.per_block})  # fmt: skip
        if grid:
            print(
                f"  act C={act_c:<5} slot C={slot_c:<5} intent F1 {scores.intent_f1:.4f}  slot F1 {scores.slot_f1:.4f}",
                flush=True,
            )
    return rows[0] if not grid else max(rows, key=lambda r: r["intent_f1"] + r["slot_f1"])


def latency(nlu: BankNLU) -> dict:
    texts, _ = load_banking77(DATA, "test")
    sample = random.Random(0).sample(texts, LATENCY_SAMPLES)
    nlu.understand("warm up")
    times = [nlu.understand(t).ms for t in sample]
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95))}


def spoken(nlu: BankNLU, n: int) -> dict:
    """Test queries spoken by our TTS (two voices, three speeds), transcribed, classified."""
    import soundfile as sf

    from duetto.asr import load_asr
    from duetto.audio import SAMPLE_RATE, load_audio, resample
    from duetto.config import TTSSettings
    from duetto.tts import load_tts, synthesize

    texts, labels = load_banking77(DATA, "test")
    rng = random.Random(1)
    idx = rng.sample(range(len(texts)), n)
    voices = [load_tts(TTSSettings(backend="piper"))]
    try:
        voices.append(load_tts(TTSSettings(backend="espeak", voice="en-gb")))
    except Exception as exc:  # the espeak voice is optional here
        print(f"(espeak voice unavailable: {exc})")
    asr = load_asr()
    lines = [
        json.loads(x) for x in (DATA / "speechocean762" / "train.jsonl").read_text().splitlines()
    ]
    talkers = [load_audio(DATA / "speechocean762" / x["audio"]) for x in rng.sample(lines, 40)]
    correct = {"clean": 0, "babble": 0}
    for k, i in enumerate(idx):
        tts = voices[k % len(voices)]
        speed = (0.9, 1.0, 1.15)[k % 3]
        speech = resample(synthesize(tts, texts[i], speed=speed), tts.sample_rate, SAMPLE_RATE)
        for cond in ("clean", "babble"):
            audio = speech if cond == "clean" else _babble(speech, talkers, rng)
            heard = asr.transcribe(audio).text
            correct[cond] += nlu.understand(heard or " ").intent == labels[i]
    del sf
    return {cond: c / n for cond, c in correct.items()} | {"n": n, "voices": len(voices)}


def _babble(speech: np.ndarray, talkers: list[np.ndarray], rng: random.Random) -> np.ndarray:
    noise = np.zeros_like(speech)
    for talker in rng.sample(talkers, BABBLE_TALKERS):
        reps = np.tile(talker, int(np.ceil(len(speech) / max(len(talker), 1))) + 1)
        start = rng.randrange(0, max(1, len(reps) - len(speech)))
        noise += reps[start : start + len(speech)]
    p_s, p_n = float(np.mean(speech**2)), float(np.mean(noise**2)) + 1e-12
    noise *= np.sqrt(p_s / (p_n * 10 ** (BABBLE_SNR_DB / 10)))
    mixed = speech + noise
    return (mixed / max(1.0, float(np.abs(mixed).max()))).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument(
        "--spoken", type=int, default=0, help="also speak this many test queries (TTS -> ASR)"
    )
    p.add_argument(
        "--nlupp-grid", action="store_true", help="cross-validate a grid of NLU++ head settings"
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    t = time.perf_counter()
    nlu = BankNLU()
    out = {"load_s": time.perf_counter() - t}
    out["banking77_test_accuracy"] = banking77_test(nlu, nlu.encoder, args.cache)
    out["nlupp_cv"] = nlupp_cv(nlu.encoder, args.cache, args.nlupp_grid)
    out["latency"] = latency(nlu)
    if args.spoken:
        out["spoken"] = spoken(nlu, args.spoken)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    cv = out["nlupp_cv"]
    print("bank NLU (bundled MiniLM-L6 encoder + linear heads)")
    print(
        f"  BANKING77 test accuracy         {out['banking77_test_accuracy']:.2%}   (target >= 94.5%)"
    )
    print(
        f"  NLU++ banking 4-fold CV intent F1 {cv['intent_f1']:.4f}  slot F1 {cv['slot_f1']:.4f}  (act C={cv['act_C']}, slot C={cv['slot_C']})"
    )
    for k, (fi, fs) in enumerate(cv["per_block"]):
        print(
            f"      block {k} (folds {k},{k + 4},{k + 8},{k + 12} held out): intent F1 {fi:.4f}  slot F1 {fs:.4f}"
        )
    lat = out["latency"]
    print(
        f"  intent + slots per utterance    median {lat['median_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms  (target < 30 ms)"
    )
    if "spoken" in out:
        s = out["spoken"]
        print(
            f"  spoken test queries (n={s['n']}, {s['voices']} voice(s), 3 speeds): clean {s['clean']:.2%} (>= 91%), babble 5 dB {s['babble']:.2%} (>= 88%)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
