"""Grammar feedback quality and speed on JFLEG dev (learner sentences, four human corrections).

    .venv/bin/python bench/grammar.py [--half even|odd] [--rerank gemma] [--llm-url URL]

Prints GLEU (Napoles et al. 2016; our implementation, 500 iterations) for the uncorrected
source, the corrector, and the human references scored against each other, plus the median
and 95th-percentile latency per sentence. JFLEG dev is the only split we have, so settings are
chosen on the even-numbered lines (``--half even``, lines 0, 2, 4 ...) and reported on the odd
ones (``--half odd``) and on the whole set.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import time
from pathlib import Path

from duetto.apps.tutor.gleu import corpus_gleu
from duetto.apps.tutor.grammar import GrammarCorrector

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "jfleg"
# JFLEG is tokenized like the Penn Treebank ("do n't", "ca n't", "it 's"); the corrector
# writes "don't". The lazy stem leaves "n't" whole.
CONTRACTION = re.compile(r"^(\w+?)(n't|'s|'m|'re|'ve|'ll|'d)$", re.IGNORECASE)


CLITIC = re.compile(r"^(n't|'s|'m|'re|'ve|'ll|'d)$", re.IGNORECASE)


def joined_contractions(tokens: list[str]) -> list[str]:
    """JFLEG's split contractions written as people type them ("do n't" -> "don't"), the form
    the corrector and its language model know; :func:`jfleg_tokens` splits them back."""
    out: list[str] = []
    for token in tokens:
        if CLITIC.match(token) and out and out[-1].isalpha():
            out[-1] += token
        else:
            out.append(token)
    return out


def jfleg_tokens(tokens: list[str]) -> list[str]:
    """The corrector's tokens split the way JFLEG's references are ("don't" -> "do n't")."""
    out = []
    for word in " ".join(tokens).split():
        match = CONTRACTION.match(word)
        out += [match[1], match[2]] if match else [word]
    return out


def correct_lines(corrector, lines: list[str]) -> list[tuple[list[str], list, float]]:
    """Each JFLEG line corrected as typed text: (corrected tokens, edits, seconds) per line."""
    out = []
    for line in lines:
        started = time.perf_counter()
        tokens, edits = corrector.correct_tokens(joined_contractions(line.split()))
        out.append((tokens, edits, time.perf_counter() - started))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--half", choices=("all", "even", "odd"), default="all")
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument(
        "--margin",
        action="append",
        default=[],
        metavar="KIND=VALUE",
        help="override a margin, e.g. 'missing article=5' (repeatable)",
    )
    parser.add_argument(
        "--insertions",
        choices=("auto", "on", "off"),
        default="auto",
        help="propose missing words (auto: the corrector's default, on)",
    )
    parser.add_argument("--trigram-weight", type=float, default=None,
                        help="share of the trigram model in an edit's gain (default: the corrector's)")  # fmt: skip
    parser.add_argument("--no-commas", action="store_true")
    parser.add_argument("--no-sentence-capitals", action="store_true")
    parser.add_argument(
        "--rerank",
        choices=("none", "gemma"),
        default="none",
        help="re-score the n-gram shortlist with the bundled Gemma 3 270M",
    )
    parser.add_argument("--rerank-margin", type=float, default=None)
    parser.add_argument("--shortlist", type=int, default=None)
    parser.add_argument(
        "--gate",
        type=float,
        default=None,
        help="re-rank only sentences with an edit this close below its margin",
    )
    parser.add_argument("--no-gate", action="store_true", help="re-rank every sentence")  # fmt: skip
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="llama.cpp threads for the re-ranker (0: the cores, up to 4)",
    )
    parser.add_argument("--llm-url", help="correct with an OpenAI-compatible chat server instead")
    parser.add_argument("--llm-model", default="", help="model name at --llm-url")
    parser.add_argument("--show", type=int, default=0, help="print this many changed sentences")
    args = parser.parse_args()  # fmt: skip
    src = (args.data / "dev.src").read_text().splitlines()
    refs = [(args.data / f"dev.ref{k}").read_text().splitlines() for k in range(4)]
    keep = [i for i in range(len(src)) if args.half == "all" or i % 2 == (args.half == "odd")]
    if args.limit:
        keep = keep[: args.limit]
    src, refs = [src[i] for i in keep], [[r[i] for i in keep] for r in refs]
    started = time.perf_counter()
    corrector = _corrector(args)
    load = time.perf_counter() - started
    hyps, times, kinds = [], [], collections.Counter()
    for tokens, edits, seconds in correct_lines(corrector, src):
        times.append(seconds)
        hyps.append(" ".join(jfleg_tokens(tokens)))
        kinds.update(e.kind for e in edits)
    for s, h in [(s, h) for s, h in zip(src, hyps, strict=True) if s.strip() != h][: args.show]:
        print(f"- {s.strip()}\n+ {h}")
    it = args.iterations
    name = "duetto (" + ("LLM server" if args.llm_url else f"rerank {args.rerank}") + ")"
    print(f"JFLEG dev ({args.half}): {len(src)} sentences, 4 references each")
    print(f"{'system':<34}{'GLEU':>8}")
    print(f"{'source (no correction)':<34}{corpus_gleu(src, src, refs, it):>8.2f}")
    print(f"{name:<34}{corpus_gleu(src, hyps, refs, it):>8.2f}")
    print(f"{'human (ref0 vs ref1-3)':<34}{corpus_gleu(src, refs[0], refs[1:], it):>8.2f}")
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    print(
        f"\n{sum(kinds.values())} edits: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common())
    )
    reranker = getattr(corrector, "reranker", None)
    if reranker is not None:
        print(f"sentences re-ranked by Gemma: {reranker.sentences} of {len(src)}")
    print(f"latency per sentence: median {statistics.median(times) * 1000:.1f} ms, "
          f"p95 {p95 * 1000:.1f} ms (load {load:.1f} s, once)")  # fmt: skip


def _corrector(args):
    if args.llm_url:
        from duetto.apps.tutor.grammar_llm import ChatCorrector

        return ChatCorrector(args.llm_url, args.llm_model)
    margin = {}
    for item in args.margin:
        kind, _, value = item.rpartition("=")
        margin[kind] = float(value)
    reranker = None
    if args.rerank == "gemma":
        from duetto.apps.tutor.grammar_lm import GemmaReranker

        options = {"threads": args.threads}
        if args.rerank_margin is not None:
            options["margin"] = args.rerank_margin
        if args.gate is not None or args.no_gate:
            options["gate"] = None if args.no_gate else args.gate
        if args.shortlist is not None:
            options["shortlist"] = args.shortlist
        reranker = GemmaReranker(**options)
    if args.trigram_weight is not None:
        options = {"trigram_weight": args.trigram_weight}
    else:
        options = {}
    return GrammarCorrector(margin, **options, insertions={"auto": None, "on": True, "off": False}[args.insertions], commas=not args.no_commas,
                            sentence_capitals=not args.no_sentence_capitals,
                            reranker=reranker)  # fmt: skip


if __name__ == "__main__":
    main()
