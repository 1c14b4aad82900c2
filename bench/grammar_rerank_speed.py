"""Gemma re-ranker speed: the shortlist's edits decoded side by side against one at a time.

    .venv/bin/python bench/grammar_rerank_speed.py [--lines 80] [--threads 1]

Runs the same JFLEG dev lines (the first ``--lines`` even ones, every one put to Gemma) through
the re-ranker twice in one process, batched (``GemmaScorer.logprobs_many``) and with the edits
decoded one after another as before, and prints both latencies, their ratios, the tokens each
decoded and the corrected sentences that differ.
"""

from __future__ import annotations

import argparse
import statistics

from duetto.apps.tutor.grammar import GrammarCorrector
from duetto.apps.tutor.grammar_lm import GemmaReranker
from grammar import DATA, correct_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=80)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    lines = (DATA / "dev.src").read_text().splitlines()[0 : 2 * args.lines : 2]
    outputs, stats = {}, {}
    for mode in ("batched", "one at a time"):
        reranker = GemmaReranker(threads=args.threads, gate=None)
        if mode == "one at a time":
            reranker.scorer.sequences = 1  # logprobs_many falls back to one logprobs per edit
        corrector = GrammarCorrector(reranker=reranker)
        done = correct_lines(corrector, lines)
        times = [seconds for _, _, seconds in done]
        outputs[mode] = [" ".join(tokens) for tokens, _, _ in done]
        stats[mode] = (statistics.median(times), statistics.mean(times),
                       reranker.scorer.tokens_evaluated)  # fmt: skip
        print(f"{mode:>14}: median {stats[mode][0] * 1000:.0f} ms, mean "
              f"{stats[mode][1] * 1000:.0f} ms a sentence, {stats[mode][2]} tokens", flush=True)  # fmt: skip
    b, s = stats["batched"], stats["one at a time"]
    print(f"batched / one at a time: median {b[0] / s[0]:.2f}, mean {b[1] / s[1]:.2f}, "
          f"tokens {b[2] / s[2]:.2f}")  # fmt: skip
    differ = [(a, c) for a, c in zip(outputs["batched"], outputs["one at a time"], strict=True)
              if a != c]  # fmt: skip
    print(f"corrected sentences that differ: {len(differ)} of {len(lines)}")
    for a, c in differ:
        print(f"  batched:       {a}\n  one at a time: {c}")


if __name__ == "__main__":
    main()
