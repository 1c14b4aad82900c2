"""What ``asr.nbest`` costs per decode, and that the engine's n-best is the one measured before.

    nice -n 10 .venv/bin/python bench/asr_nbest.py --clips 30

Reads the kept audio of a ``bench/bank_spoken.py --set`` sample (default: the 770 spoken test
queries, set ``t``), clean and in babble, and decodes each clip with the bank's voice-call ASR
(tiny.en, ``ASR_PROMPT``, beam 5, one thread) twice, alternately: ``nbest = 1`` (the transcript
alone) and ``nbest = K``. Prints the median CPU seconds per decode of each, how often the
transcript differs between the two, and how the K hypotheses compare with those cached by
``bank_spoken.py --nbest K`` (``*_nbest`` rows) for the same audio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bank_spoken import asr_tag, audio_path, cache_path, load_audio, read_transcripts  # noqa: E402
from duetto.apps.bank.training import DEFAULT_CACHE  # noqa: E402

# Scores are cached rounded to 4 decimals.
SCORE_TOLERANCE = 1e-3


def cpu_decode(asr, audio, nbest: int):
    """(transcription, CPU seconds of this process for it)."""
    started = time.process_time()
    out = asr.transcribe(audio, nbest=nbest)
    return out, time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--split", default="test")
    p.add_argument("--per-intent", type=int, default=10)
    p.add_argument("--set", dest="audio_set", default="t")
    p.add_argument("--clips", type=int, default=30, help="queries (each clean and in babble)")
    p.add_argument("--nbest", type=int, default=5)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = p.parse_args(argv)

    from duetto.apps.bank.nlu import ASR_BEAM_SIZE, ASR_PROMPT
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings

    tag = asr_tag("bundled", True, nbest=args.nbest, audio_set=args.audio_set)
    rows = read_transcripts(cache_path(args.cache, args.split, args.per_intent, tag))
    rows = sorted(rows, key=lambda r: r["i"])
    rows = rows[:: max(1, len(rows) // args.clips)][: args.clips]  # intents stay mixed
    asr = WhisperASR(ASRSettings(prompt=ASR_PROMPT, beam_size=ASR_BEAM_SIZE, threads=1))
    asr.transcribe(load_audio(audio_path(args.cache, args.split, args.per_intent, args.audio_set, rows[0]["i"]))[0])  # fmt: skip
    cpu: dict[int, list[float]] = {1: [], args.nbest: []}
    changed = same_hyps = same_texts = 0
    for n, row in enumerate(rows, 1):
        kept = load_audio(audio_path(args.cache, args.split, args.per_intent, args.audio_set, row["i"]))  # fmt: skip
        for cond, audio in zip(("clean", "babble"), kept, strict=True):
            one, seconds = cpu_decode(asr, audio, 1)
            cpu[1].append(seconds)
            many, seconds = cpu_decode(asr, audio, args.nbest)
            cpu[args.nbest].append(seconds)
            assert many.alternatives[0][0] == many.text and not one.alternatives
            changed += one.text != many.text
            cached = row[f"{cond}_nbest"]
            texts = [t for t, _ in many.alternatives] == [t for t, _ in cached]
            same_texts += texts
            same_hyps += texts and all(
                abs(a[1] - b[1]) <= SCORE_TOLERANCE
                for a, b in zip(many.alternatives, cached, strict=True)
            )
        print(f"  {n}/{len(rows)}", flush=True)
    decodes = 2 * len(rows)
    base, more = statistics.median(cpu[1]), statistics.median(cpu[args.nbest])
    print(f"{decodes} decodes ({len(rows)} queries, clean and babble), tiny.en beam {ASR_BEAM_SIZE} + prompt, 1 thread")  # fmt: skip
    print("| nbest | CPU s a decode, median | mean |")
    print("| --- | --- | --- |")
    for k in cpu:
        print(f"| {k} | {statistics.median(cpu[k]):.3f} | {statistics.mean(cpu[k]):.3f} |")
    print(
        f"extra CPU for {args.nbest}-best: {more - base:+.3f} s a decode ({more / base - 1:+.1%})"
    )
    print(f"transcript differs between nbest 1 and {args.nbest}: {changed} of {decodes}")
    print(f"hypotheses equal to the cached bench n-best: texts {same_texts}, texts and scores {same_hyps} of {decodes}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
