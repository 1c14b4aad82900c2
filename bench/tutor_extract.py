"""Decode speechocean762 once and cache the scorer's evidence (alignment, phone loop, ASR).

    nice -n 10 .venv/bin/python bench/tutor_extract.py --split train --shard 0/2

Evidence goes to ~/.cache/duetto/tutor/evidence/<utt>.json; later runs skip cached utterances.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from duetto.apps.tutor import corpus
from duetto.asr import load_asr
from duetto.config import ASRSettings

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speechocean762"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", default="train", choices=["train", "dev"])
    parser.add_argument("--shard", default="0/1", help="i/n: every n-th utterance starting at i")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--asr", action="store_true", help="also cache Whisper transcripts (slower)"
    )
    parser.add_argument(
        "--whisper", action="store_true", help="cache Whisper encoder states and token odds only"
    )
    parser.add_argument(
        "--base", action="store_true", help="cache Whisper base encoder states only (tutor_base/)"
    )
    parser.add_argument("--every", type=int, default=10, help="progress every N utterances")
    args = parser.parse_args()
    i, n = (int(x) for x in args.shard.split("/"))
    utts = corpus.load(args.data, args.split)[i::n]
    cache = corpus.evidence_cache()
    suffix = ".whisper.npz" if args.whisper else ".json"
    if args.base:
        cache, suffix = cache.parent.parent / "tutor_base", ".npy"
    todo = [u for u in utts if not (cache / f"{u.id}{suffix}").is_file()]
    print(f"{len(utts) - len(todo)}/{len(utts)} cached, {len(todo)} to extract", flush=True)
    utts = todo
    if args.base:
        asr = load_asr(ASRSettings(model="bundled-base", threads=args.threads))
    else:
        asr = load_asr(ASRSettings(threads=args.threads)) if args.asr or args.whisper else None
    started, cpu = time.perf_counter(), time.process_time()
    for k, utt in enumerate(utts, 1):
        if args.base:
            corpus.base_states_for(utt, asr)
        elif args.whisper:
            corpus.whisper_for(utt, asr)
        else:
            corpus.evidence_for(utt, asr)
        if k % args.every == 0 or k == len(utts):
            wall, used = (time.perf_counter() - started) / k, (time.process_time() - cpu) / k
            print(f"{k}/{len(utts)} {wall:.2f} s/utt wall, {used:.2f} s/utt CPU", flush=True)
    print(f"done {len(utts)} in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
