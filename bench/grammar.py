"""Grammar feedback quality and speed on JFLEG dev (learner sentences, four human corrections).

    .venv/bin/python bench/grammar.py [--limit N]

Prints GLEU (Napoles et al. 2016; our implementation, 500 iterations) for the uncorrected
source, the corrector, and the human references scored against each other, plus the median
and 95th-percentile latency per sentence.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from duetto.apps.tutor.gleu import corpus_gleu
from duetto.apps.tutor.grammar import GrammarCorrector

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jfleg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    src = (args.data / "dev.src").read_text().splitlines()
    refs = [(args.data / f"dev.ref{k}").read_text().splitlines() for k in range(4)]
    if args.limit:
        src, refs = src[: args.limit], [r[: args.limit] for r in refs]
    started = time.perf_counter()
    corrector = GrammarCorrector()
    load = time.perf_counter() - started
    hyps, times, n_edits = [], [], 0
    for line in src:
        t = time.perf_counter()
        tokens, edits = corrector.correct_tokens(line.split())
        times.append(time.perf_counter() - t)
        hyps.append(" ".join(tokens))
        n_edits += len(edits)
    it = args.iterations
    print(f"JFLEG dev: {len(src)} sentences, 4 references each")
    print(f"{'system':<34}{'GLEU':>8}")
    print(f"{'source (no correction)':<34}{corpus_gleu(src, src, refs, it):>8.2f}")
    print(f"{'duetto (edits ranked by n-gram LM)':<34}{corpus_gleu(src, hyps, refs, it):>8.2f}")
    print(f"{'human (ref0 vs ref1-3)':<34}{corpus_gleu(src, refs[0], refs[1:], it):>8.2f}")
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    print(f"\n{n_edits} edits; latency per sentence: median {statistics.median(times) * 1000:.1f} ms, "
          f"p95 {p95 * 1000:.1f} ms (load {load:.1f} s, once)")  # fmt: skip


if __name__ == "__main__":
    main()
