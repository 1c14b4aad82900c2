"""BANKING77 queries spoken by our TTS and transcribed by the engine's ASR, clean and in babble.

    nice -n 5 .venv/bin/python bench/bank_spoken.py --split test --per-intent 10   # 770 queries
    nice -n 5 .venv/bin/python bench/bank_spoken.py --split train --per-intent 26  # ASR-noised train

Each query is spoken by one of several voices and speeds (cycled: the bundled Piper voice at
0.85x, 1x and 1.2x, espeak-ng en-us and en-gb-x-rp), resampled to 16 kHz and transcribed by
``duetto.asr`` (Whisper tiny.en, the engine's default), once clean and once mixed with babble at
5 dB active-speech SNR (``duetto.data.noise.Babble``: six speakers of speechocean762 *train*,
mixed by ``mix_at_snr``). The transcripts are appended to a JSON-lines cache (resumable), which
``bench/bank_nlu.py --spoken`` classifies with the shipped NLU and
``bench/bank_finetune.py --asr-train`` uses as extra training text.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from duetto.apps.bank.training import DEFAULT_CACHE, load_banking77  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BABBLE_MANIFEST = DATA / "speechocean762" / "train.jsonl"
SNR_DB = 5.0
SEED = 0
# (backend, voice, speed) cycled over the queries.
VOICES = (
    ("piper", "bundled", 0.85),
    ("piper", "bundled", 1.0),
    ("piper", "bundled", 1.2),
    ("espeak", "en-us", 1.0),
    ("espeak", "en-gb-x-rp", 1.1),
)


def cache_path(cache: Path, split: str, per_intent: int, tag: str = "") -> Path:
    """Transcripts of one sample; ``tag`` names an ASR setting other than the default."""
    return cache / f"spoken-{split}-{per_intent}per-intent{'-' + tag if tag else ''}.jsonl"


def asr_tag(model: str, prompt: bool) -> str:
    """Cache tag of an ASR setting ("" for the engine's default: tiny.en, no prompt)."""
    parts = [] if model == "bundled" else [model]
    return "-".join(parts + (["prompt"] if prompt else []))


def transcribe(asr, audio, prompt: str | None) -> str:
    """The engine's ASR; with a prompt, on the same trimmed window as without one.

    ``WhisperASR.transcribe(prompt=...)`` takes faster-whisper's standard 30 s path, so a
    comparison with the default (trimmed) path would mix two changes. Until the engine's
    trimmed path takes a prompt, this decodes the trimmed window with the prompt as Whisper's
    previous-text context (``<|startofprev|> prompt``), everything else as the engine does.
    """
    if not prompt:
        return asr.transcribe(audio).text.strip()
    import ctranslate2
    import numpy as np
    from faster_whisper.tokenizer import Tokenizer

    from duetto.asr import whisper as w

    pad = max(w.TRIM_PAD, int(w.MIN_WINDOW_S * w.SAMPLE_RATE) - len(audio))
    padded = np.concatenate([audio.astype(np.float32), np.zeros(pad, np.float32)])
    features = asr.model.feature_extractor(padded)
    frames = min(features.shape[-1] // 2 * 2, w.FULL_WINDOW_FRAMES)
    encoded = asr.model.model.encode(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None, :, :frames])),
        to_cpu=False,
    )
    tok = Tokenizer(asr.model.hf_tokenizer, asr.multilingual, task="transcribe", language="en")
    context = [tok.sot_prev, *tok.encode(" " + prompt.strip())]
    duration = len(audio) / w.SAMPLE_RATE
    result = asr.model.model.generate(
        encoded,
        [[*context, *tok.sot_sequence, tok.no_timestamps]],
        beam_size=asr.settings.beam_size,
        max_length=len(context) + int(w.MAX_TOKENS_PER_S * duration) + 8,
        suppress_blank=True,
        suppress_tokens=[-1],
        no_repeat_ngram_size=w.NO_REPEAT_NGRAM,
    )[0]
    ids = [t for t in result.sequences_ids[0] if t < tok.eot]
    return w._drop_repeats(" ".join(tok.decode(ids).split()))


def stratified_sample(labels: list[str], per_intent: int, seed: int = SEED) -> list[int]:
    """``per_intent`` random indices of each label (all of a label that has fewer), sorted."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    picked = [
        i
        for label in sorted(by_label)
        for i in rng.sample(by_label[label], min(per_intent, len(by_label[label])))
    ]
    return sorted(picked)


def read_transcripts(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument(
        "--per-intent", type=int, default=10, help="queries per intent (stratified, seed 0)"
    )
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--threads", type=int, default=1, help="ASR threads")
    p.add_argument("--asr-model", default="bundled", help="bundled (tiny.en) or bundled-base")
    p.add_argument("--prompt", action="store_true",
                   help="decode with the bank's ASR prompt (duetto.apps.bank.nlu.ASR_PROMPT)")  # fmt: skip
    p.add_argument("--limit", type=int, default=0, help="only the first N queries of the sample")
    args = p.parse_args(argv)

    from duetto.asr import load_asr
    from duetto.audio import SAMPLE_RATE, resample
    from duetto.config import ASRSettings, TTSSettings
    from duetto.data.noise import Babble, fit_length, mix_at_snr, stable_rng
    from duetto.tts import load_tts, synthesize

    texts, labels = load_banking77(DATA, args.split)
    picked = full = stratified_sample(labels, args.per_intent)
    if args.limit:  # every k-th, so that the intents stay mixed
        picked = picked[:: max(1, len(picked) // args.limit)][: args.limit]
    prompt = None
    if args.prompt:
        from duetto.apps.bank.nlu import ASR_PROMPT as prompt
    out = cache_path(args.cache, args.split, args.per_intent, asr_tag(args.asr_model, args.prompt))
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r["i"] for r in read_transcripts(out)}
    todo = [i for i in picked if i not in done]
    print(
        f"{len(picked)} {args.split} queries, {len(done)} cached, {len(todo)} to speak -> {out}",
        flush=True,
    )

    asr = load_asr(ASRSettings(model=args.asr_model, threads=args.threads))
    voices = {
        (b, v): load_tts(
            TTSSettings(backend=b, voice=v, variation=1.0, watermark=False, styles=False)
        )
        for b, v, _ in VOICES
    }
    babble = Babble(BABBLE_MANIFEST)
    started = time.perf_counter()
    with out.open("a") as f:
        for n, i in enumerate(todo, 1):
            backend, voice, speed = VOICES[full.index(i) % len(VOICES)]
            tts = voices[(backend, voice)]
            speech = resample(synthesize(tts, texts[i], speed=speed), tts.sample_rate, SAMPLE_RATE)
            rng = stable_rng(SEED, args.split, i)
            noise = babble.noise(len(speech), rng)
            noisy = mix_at_snr(speech, fit_length(noise, len(speech), rng), SNR_DB).audio
            row = {
                "i": i, "text": texts[i], "label": labels[i], "voice": f"{backend}:{voice}", "speed": speed,
                "clean": transcribe(asr, speech, prompt), "babble": transcribe(asr, noisy, prompt),
            }  # fmt: skip
            f.write(json.dumps(row) + "\n")
            f.flush()
            if n % 25 == 0 or n == len(todo):
                rate = (time.perf_counter() - started) / n
                print(
                    f"  {n}/{len(todo)}  {rate:.2f} s/query, ~{rate * (len(todo) - n) / 60:.0f} min left",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
