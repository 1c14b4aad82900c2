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

Piper's delivery varies from run to run, so ASR settings are compared on the same audio: with
``--set NAME`` the speech and its babble mix are kept on disk (int16, ``spoken-audio-...``), and
every setting decoded under that set reads them, e.g.

    bench/bank_spoken.py --split train --per-intent 3 --set a --prompt                # tiny.en
    bench/bank_spoken.py --split train --per-intent 3 --set a --prompt --asr-model bundled-base
    bench/bank_spoken.py --split train --per-intent 3 --set a --prompt --beam 5 --nbest 5

``--nbest K`` also stores the K best hypotheses of a beam search with their scores
(``clean_nbest``, ``babble_nbest``: ``[text, mean token log-probability]``); every row records the
decode's CPU seconds (``clean_cpu_s``, ``babble_cpu_s``).
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
sys.path.insert(0, str(ROOT / "bench"))

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


def asr_tag(
    model: str,
    prompt: bool,
    beam: int = 1,
    nbest: int = 1,
    min_word_prob: float = 0.0,
    min_word_level_db: float | None = None,
    audio_set: str = "",
    prompt_name: str = "",
) -> str:
    """Cache tag of an ASR setting ("" for the engine's default: tiny.en, no prompt)."""
    # A model folder is tagged by its name (bench/bank_asr_finetune.py's candidates).
    parts = [] if model == "bundled" else [Path(model).name if Path(model).is_dir() else model]
    parts += [f"prompt{prompt_name}"] if prompt else []
    parts += [f"beam{beam}"] if beam != 1 else []
    parts += [f"nbest{nbest}"] if nbest > 1 else []
    parts += [f"wp{min_word_prob:g}"] if min_word_prob > 0 else []
    parts += [f"wl{min_word_level_db:g}"] if min_word_level_db is not None else []
    parts += [f"set-{audio_set}"] if audio_set else []
    return "-".join(parts)


def transcribe(asr, audio) -> str:
    """The engine's ASR with its settings (prompt, beam, word filters) as a voice call runs it."""
    return asr.transcribe(audio).text.strip()


def nbest(asr, audio, k: int) -> list[tuple[str, float]]:
    """The ``k`` best hypotheses of a beam search (beam ``max(k, asr beam)``) on the engine's
    trimmed window with its prompt, best first, each with its mean token log-probability
    (rounded for the cache); the first is the engine's own transcript at that beam size. The
    engine's ``asr.nbest`` (``Transcription.alternatives``), as a voice call gets them."""
    return [(text, round(score, 4)) for text, score in asr.transcribe(audio, nbest=k).alternatives]


def audio_path(cache: Path, split: str, per_intent: int, audio_set: str, i: int) -> Path:
    """Where the speech and babble mix of query ``i`` of a set are kept."""
    return cache / f"spoken-audio-{split}-{per_intent}per-intent-{audio_set}" / f"{i}.npz"


def load_audio(path: Path):
    """(speech, noisy) float32 16 kHz from an ``audio_path`` file."""
    import numpy as np

    with np.load(path) as f:
        return (f["clean"].astype(np.float32) / 32767, f["babble"].astype(np.float32) / 32767)


def save_audio(path: Path, speech, noisy) -> None:
    import numpy as np

    def pcm(a):
        return (np.clip(a, -1, 1) * 32767).astype(np.int16)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, clean=pcm(speech), babble=pcm(noisy))
    tmp.replace(path)


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
    p.add_argument("--split", choices=("test", "train", "holdout"), default="test",
                   help="holdout: the 10%% of train held out when the shipped model was fitted "
                        "(bench/bank_finetune.py), for choosing NLU settings on unseen queries")  # fmt: skip
    p.add_argument(
        "--per-intent", type=int, default=10, help="queries per intent (stratified, seed 0)"
    )
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--threads", type=int, default=1, help="ASR threads")
    p.add_argument("--asr-model", default="bundled", help="bundled (tiny.en) or bundled-base")
    p.add_argument("--prompt", action="store_true",
                   help="decode with the bank's ASR prompt (duetto.apps.bank.nlu.ASR_PROMPT)")  # fmt: skip
    p.add_argument("--prompt-text", default=None,
                   help="with --prompt: this prompt instead of ASR_PROMPT (tagged --prompt-name)")  # fmt: skip
    p.add_argument("--prompt-name", default="", help="cache tag part of --prompt-text")
    p.add_argument("--beam", type=int, default=1, help="beam size (asr.beam_size)")
    p.add_argument("--nbest", type=int, default=1, help="also keep the N best hypotheses")
    p.add_argument("--min-word-prob", type=float, default=0.0, help="asr.min_word_prob")
    p.add_argument("--min-word-level-db", type=float, default=None, help="asr.min_word_level_db")
    p.add_argument("--set", dest="audio_set", default="",
                   help="keep the audio on disk under this name and decode the kept audio")  # fmt: skip
    p.add_argument("--limit", type=int, default=0, help="only the first N queries of the sample")
    p.add_argument("--shard", default="0/1", help="K/N: only every N-th query from the K-th")
    args = p.parse_args(argv)

    from duetto.asr import load_asr
    from duetto.audio import SAMPLE_RATE, resample
    from duetto.config import ASRSettings, TTSSettings
    from duetto.data.noise import Babble, fit_length, mix_at_snr, stable_rng
    from duetto.tts import load_tts, synthesize

    texts, labels = load_banking77(DATA, "test" if args.split == "test" else "train")
    if args.split == "holdout":  # the 10% of train the shipped model was not fitted on
        from bank_finetune import HOLDOUT, stratified_split

        held = stratified_split(labels, HOLDOUT)[1]
        picked = full = [
            held[k] for k in stratified_sample([labels[i] for i in held], args.per_intent)
        ]
    else:
        picked = full = stratified_sample(labels, args.per_intent)
    if args.limit:  # every k-th, so that the intents stay mixed
        picked = picked[:: max(1, len(picked) // args.limit)][: args.limit]
    shard, shards = (int(x) for x in args.shard.split("/"))
    picked = picked[shard::shards]
    prompt = None
    if args.prompt:
        from duetto.apps.bank.nlu import ASR_PROMPT as prompt

        prompt = args.prompt_text or prompt
    tag = asr_tag(args.asr_model, args.prompt, args.beam, args.nbest, args.min_word_prob,
                  args.min_word_level_db, args.audio_set, args.prompt_name)  # fmt: skip
    out = cache_path(args.cache, args.split, args.per_intent, tag)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r["i"] for r in read_transcripts(out)}
    todo = [i for i in picked if i not in done]
    print(
        f"{len(picked)} {args.split} queries, {len(done)} cached, {len(todo)} to speak -> {out}",
        flush=True,
    )

    asr = load_asr(
        ASRSettings(model=args.asr_model, threads=args.threads, prompt=prompt,
                    beam_size=args.beam, min_word_prob=args.min_word_prob,
                    min_word_level_db=args.min_word_level_db)
    )  # fmt: skip
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
            kept = audio_path(args.cache, args.split, args.per_intent, args.audio_set, i)
            if args.audio_set and kept.exists():
                speech, noisy = load_audio(kept)
            else:
                tts = voices[(backend, voice)]
                speech = resample(
                    synthesize(tts, texts[i], speed=speed), tts.sample_rate, SAMPLE_RATE
                )
                rng = stable_rng(SEED, args.split, i)
                noise = babble.noise(len(speech), rng)
                noisy = mix_at_snr(speech, fit_length(noise, len(speech), rng), SNR_DB).audio
                if args.audio_set:
                    save_audio(kept, speech, noisy)
                    speech, noisy = load_audio(kept)  # decode what later settings will read
            row = {
                "i": i, "text": texts[i], "label": labels[i], "voice": f"{backend}:{voice}", "speed": speed,
            }  # fmt: skip
            for cond, audio in (("clean", speech), ("babble", noisy)):
                cpu = time.process_time()
                if args.nbest > 1:
                    hyps = nbest(asr, audio, args.nbest)
                    row[cond], row[f"{cond}_nbest"] = hyps[0][0], hyps
                else:
                    row[cond] = transcribe(asr, audio)
                row[f"{cond}_cpu_s"] = round(time.process_time() - cpu, 3)
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
