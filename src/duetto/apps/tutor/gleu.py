"""GLEU for grammatical error correction (Napoles et al. 2015, revised 2016).

Like BLEU, but n-grams of the hypothesis that also occur in the *source* and that the reference
changed are penalised: a system gains by making the edits people made, not by copying the input.
With several references, each iteration draws one reference per sentence at random; the score
is the mean over iterations (the published JFLEG figures use 500).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

ORDER = 4
ITERATIONS = 500


def ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def sentence_stats(
    source: Sequence[str], hypothesis: Sequence[str], reference: Sequence[str]
) -> list[int]:
    """[hyp length, ref length, then matched and possible n-grams for n = 1..4]."""
    stats = [len(hypothesis), len(reference)]
    for n in range(1, ORDER + 1):
        h, r, s = ngrams(hypothesis, n), ngrams(reference, n), ngrams(source, n)
        # Source n-grams the reference does not keep at all: copying them is penalised.
        dropped = Counter({g: c for g, c in s.items() if g not in r})
        matched = sum((h & r).values()) - sum((h & dropped).values())
        stats += [max(matched, 0), max(len(hypothesis) + 1 - n, 0)]
    return stats


def from_stats(stats: Sequence[float]) -> float:
    """GLEU (0-1) from summed statistics; 0 when any n-gram order has no match."""
    if any(x == 0 for x in stats):
        return 0.0
    hyp_len, ref_len = stats[0], stats[1]
    log_precision = (
        sum(math.log(m / p) for m, p in zip(stats[2::2], stats[3::2], strict=True)) / ORDER
    )
    return math.exp(min(0.0, 1.0 - ref_len / hyp_len) + log_precision)


def corpus_gleu(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    iterations: int = ITERATIONS,
    seed: int = 0,
) -> float:
    """Corpus GLEU × 100. ``references[k]`` is the k-th reference set (one line per sentence)."""
    if not (len(sources) == len(hypotheses) and all(len(r) == len(sources) for r in references)):
        raise ValueError(
            "sources, hypotheses and every reference set must have the same number of lines"
        )
    src = [s.split() for s in sources]
    hyp = [h.split() for h in hypotheses]
    refs = [[r[i].split() for r in references] for i in range(len(sources))]
    # Statistics per (sentence, reference) once; iterations only pick among them.
    table = [[sentence_stats(src[i], hyp[i], ref) for ref in refs[i]] for i in range(len(src))]
    rng = random.Random(seed)
    scores = []
    for _ in range(iterations):
        total = [0] * (2 + 2 * ORDER)
        for options in table:
            picked = options[rng.randrange(len(options))]
            total = [a + b for a, b in zip(total, picked, strict=True)]
        scores.append(from_stats(total))
    return 100.0 * sum(scores) / len(scores)
