"""Coordinate search of the grammar corrector's margins on the even lines of JFLEG dev.

    .venv/bin/python bench/grammar_tune.py [--trigram-weight W] [--passes 2]

Starts from the corrector's defaults and, kind by kind, moves a margin to the grid value with
the best GLEU (100 iterations) when it gains at least ``--min-gain`` over the current setting.
Only the even lines are read (the odd ones stay held out for bench/grammar.py); the printed
margins are what to try there.
"""

from __future__ import annotations

import argparse
import math

from duetto.apps.tutor.gleu import corpus_gleu
from duetto.apps.tutor.grammar import MARGIN, GrammarCorrector
from grammar import DATA, jfleg_tokens, joined_contractions

GRID = {
    "spelling": (0.0, 1.0, 2.0, 3.0, 4.0),
    "article": (2.0, 3.0, 4.0, 5.0, 6.0, 8.0),
    "preposition": (2.0, 3.0, 4.0, 5.0, 7.0, 9.0),
    "extra preposition": (2.0, 3.0, 4.0, 5.0, 7.0, 10.0),
    "verb form": (1.0, 2.0, 3.0, 4.0, 6.0, 8.0),
    "noun number": (1.0, 2.0, 3.5, 5.0, 7.0),
    "number agreement": (-6.0, -4.0, -2.0, 0.0, 2.0, 5.0),
    "subject agreement": (-8.0, -6.0, -4.0, -2.0, 0.0, 3.0),
    "tense": (3.0, 4.0, 5.0, 6.0, 8.0),
    "participle": (2.0, 3.0, 4.0, 5.0, 6.0, 8.0),
    "rare word": (1.0, 2.0, 3.0, 5.0, 8.0),
    "word choice": (1.0, 2.0, 3.5, 5.0, 7.0),
    "repeated word": (-1.0, 1.0, 3.0),
    "compound": (0.0, 2.0, 4.0),
    "missing article": (math.inf, 2.0, 4.0, 6.0, 8.0),
    "missing word": (math.inf, 2.0, 4.0, 6.0, 8.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trigram-weight", type=float, default=None)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--min-gain", type=float, default=0.05)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    src = (DATA / "dev.src").read_text().splitlines()[0::2]
    refs = [(DATA / f"dev.ref{k}").read_text().splitlines()[0::2] for k in range(4)]
    options = {} if args.trigram_weight is None else {"trigram_weight": args.trigram_weight}

    def score(margin: dict[str, float]) -> float:
        corrector = GrammarCorrector(margin, insertions=True, **options)
        hyps = [
            " ".join(jfleg_tokens(corrector.correct_tokens(joined_contractions(s.split()))[0]))
            for s in src
        ]
        return corpus_gleu(src, hyps, refs, args.iterations)

    margin = dict(MARGIN)
    best = score(margin)
    print(f"start {best:.2f} {margin}", flush=True)
    for _ in range(args.passes):
        moved = False
        for kind, values in GRID.items():
            results = {v: score({**margin, kind: v}) for v in values if v != margin[kind]}
            print(f"  {kind}: " + ", ".join(f"{v:g} {g:.2f}" for v, g in results.items()),
                  flush=True)  # fmt: skip
            value, gleu = max(results.items(), key=lambda item: item[1])
            if gleu >= best + args.min_gain:
                margin[kind], best, moved = value, gleu, True
                print(f"{kind} -> {value:g}: {best:.2f}", flush=True)
        if not moved:
            break
    print(f"final {best:.2f} {margin}")


if __name__ == "__main__":
    main()
