"""Search of the gated Gemma re-ranker's settings on the even lines of JFLEG dev.

    .venv/bin/python bench/grammar_rerank_tune.py [--limit N] [--iterations 100]

Gemma's log-likelihoods are remembered per token sequence, so after the first setting only the
edits a new setting adds cost Gemma time; the latencies it prints are therefore not the
re-ranker's (bench/grammar.py measures those). Steps, each kept when it gains at least
``--min-gain`` GLEU: shortlist floors at the n-gram margins minus 2, 3, 4; the n-gram edits
kept without Gemma (``CONFIDENT``); the gate (the widest band that sends under ``--max-share``
of the lines to Gemma); the default Gemma margin; shortlist size, passes and the weight of a
spelling's edit cost; then per-kind
Gemma margins. ``--gates 1.25,1.5`` scores only those gates on the even lines. ``--final`` runs the current setting (or ``--setting``, as the search prints
it) on the even and the odd lines and scores even, odd and all at 500 iterations.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import time
from pathlib import Path

from duetto.apps.tutor.gleu import corpus_gleu
from duetto.apps.tutor.grammar import MARGIN, GrammarCorrector
from duetto.apps.tutor.grammar_lm import (
    CONFIDENT,
    COST_WEIGHT,
    GATE,
    PASSES,
    SHORTLIST,
    SHORTLIST_MARGIN,
    GemmaReranker,
)
from grammar import DATA, correct_lines, jfleg_tokens, joined_contractions

FLOOR_OFFSETS = (2.0, 3.0, 4.0)
CONFIDENTS = (0.0, 1.0, 2.0, 4.0)
SHORTLISTS = (12,)
PASSES_GRID = (3,)
COST_WEIGHTS = (0.25, 1.0)
GATES = (1.0, 1.25, 1.5, 1.75, 2.0)
DEFAULT_MARGINS = (1.0, 1.5, 2.5, 3.0)
KIND_STEPS = (-1.0, 1.0)  # per-kind Gemma margin moves tried around the current one
KINDS = ("spelling", "article", "preposition", "verb form", "noun number", "word choice",
         "number agreement", "subject agreement", "tense", "participle", "rare word",
         "missing article", "extra preposition", "a/an")  # fmt: skip


def memoize(scorer, seen: dict) -> None:
    """Remember the scorer's log-likelihoods per (token ids, start, stop) in ``seen``."""
    compute = scorer.logprobs

    def logprobs(ids, start, stop=None):
        key = (tuple(ids), start, stop)
        if key not in seen:
            seen[key] = compute(ids, start, stop)
        return seen[key]

    scorer.logprobs = logprobs
    compute_many = scorer.logprobs_many

    def logprobs_many(variants):
        keys = [(tuple(ids), start, stop) for ids, start, stop in variants]
        missing = [v for v, key in zip(variants, keys, strict=True) if key not in seen]
        for (ids, start, stop), lp in zip(missing, compute_many(missing), strict=True):
            seen[(tuple(ids), start, stop)] = lp
        return [seen[key] for key in keys]

    scorer.logprobs_many = logprobs_many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--min-gain", type=float, default=0.05)
    parser.add_argument("--max-share", type=float, default=0.46)
    parser.add_argument("--final", action="store_true")
    parser.add_argument("--gates", default="",
                        help="only score these gates (comma-separated) on the even lines")  # fmt: skip
    parser.add_argument("--setting", type=json.loads, default=None)
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep Gemma's scores in this file between runs (pickle)")  # fmt: skip
    args = parser.parse_args()
    lines = (DATA / "dev.src").read_text().splitlines()
    all_refs = [(DATA / f"dev.ref{k}").read_text().splitlines() for k in range(4)]
    reranker = GemmaReranker()
    seen = pickle.loads(args.cache.read_bytes()) if args.cache and args.cache.exists() else {}
    memoize(reranker.scorer, seen)

    def save() -> None:
        if args.cache:
            args.cache.write_bytes(pickle.dumps(seen))

    corrector = GrammarCorrector(reranker=reranker)

    def configure(setting: dict) -> None:
        reranker.gate = setting["gate"]
        reranker.default_margin = setting["default_margin"]
        reranker.margin = dict(setting["margin"])
        reranker.shortlist_margin = dict(setting["floors"])
        reranker.confident = setting.get("confident")
        reranker.shortlist = setting.get("shortlist", SHORTLIST)
        reranker.passes = setting.get("passes", PASSES)
        reranker.cost_weight = setting.get("cost_weight", COST_WEIGHT)

    def run(setting: dict, keep: list[int]) -> tuple[list[str], list[float], int]:
        configure(setting)
        reranker.sentences = 0
        done = correct_lines(corrector, [lines[i] for i in keep])
        hyps = [" ".join(jfleg_tokens(tokens)) for tokens, _, _ in done]
        return hyps, [seconds for _, _, seconds in done], reranker.sentences

    def gleu(keep: list[int], hyps: list[str], iterations: int) -> float:
        src = [lines[i] for i in keep]
        return corpus_gleu(src, hyps, [[r[i] for i in keep] for r in all_refs], iterations)

    def share(gate: float, keep: list[int]) -> float:
        reranker.gate = gate
        return sum(
            reranker.unsure(corrector, joined_contractions(lines[i].split())) for i in keep
        ) / len(keep)

    even = list(range(0, len(lines), 2))
    odd = list(range(1, len(lines), 2))
    if args.limit:
        even, odd = even[: args.limit], odd[: args.limit]
    setting = args.setting or {
        "gate": GATE,
        "default_margin": reranker.default_margin,
        "margin": dict(reranker.margin),
        "floors": dict(SHORTLIST_MARGIN),
        "confident": CONFIDENT,
    }
    if args.final:
        scores, hyps_by_line, times = {}, {}, []
        for name, keep in (("even", even), ("odd", odd)):
            hyps, t, sent = run(setting, keep)
            times += t
            hyps_by_line.update(zip(keep, hyps, strict=True))
            scores[name] = gleu(keep, hyps, 500)
            save()
            print(f"{name}: GLEU {scores[name]:.2f}, {sent} of {len(keep)} put to Gemma, "
                  f"median {statistics.median(t) * 1000:.1f} ms", flush=True)  # fmt: skip
        both = sorted(hyps_by_line)
        print(f"all: GLEU {gleu(both, [hyps_by_line[i] for i in both], 500):.2f}")
        times.sort()
        print(f"latency (the even lines' Gemma scores remembered): median "
              f"{statistics.median(times) * 1000:.1f} ms, p95 "
              f"{times[int(0.95 * (len(times) - 1))] * 1000:.1f} ms")  # fmt: skip
        return

    if args.gates:
        for gate in (float(g) for g in args.gates.split(",")):
            hyps, _, sent = run({**setting, "gate": gate}, even)
            save()
            print(f"gate {gate}: GLEU {gleu(even, hyps, args.iterations):.2f}, {sent} of "
                  f"{len(even)} put to Gemma", flush=True)  # fmt: skip
        return

    def score(candidate: dict, label: str) -> float:
        started = time.time()
        hyps, _, sent = run(candidate, even)
        value = gleu(even, hyps, args.iterations)
        save()
        print(f"{label}: GLEU {value:.2f}, {sent} of {len(even)} put to Gemma "
              f"({time.time() - started:.0f} s)", flush=True)  # fmt: skip
        return value

    best = score(setting, "current")

    def trial(candidate: dict, label: str) -> None:
        nonlocal best, setting
        value = score(candidate, label)
        if value >= best + args.min_gain:
            best, setting = value, candidate
            print(f"  kept: {json.dumps(setting)}", flush=True)

    for offset in FLOOR_OFFSETS:
        floors = {k: m - offset for k, m in MARGIN.items() if k != "compound"}
        floors["missing word"] = SHORTLIST_MARGIN["missing word"]  # its n-gram margin is infinite
        if floors != setting["floors"]:
            trial({**setting, "floors": floors}, f"floors = n-gram margins - {offset}")
    for c in CONFIDENTS:
        if c != setting["confident"]:
            trial({**setting, "confident": c}, f"n-gram edits {c} nats over their margin kept")
    shares = {g: share(g, even) for g in GATES}
    print("gate shares: " + ", ".join(f"{g}: {s:.1%}" for g, s in shares.items()), flush=True)
    wide = max((g for g, s in shares.items() if s < args.max_share), default=setting["gate"])
    if wide != setting["gate"]:
        trial({**setting, "gate": wide}, f"gate {wide}")
    for m in DEFAULT_MARGINS:
        if m != setting["default_margin"]:
            trial({**setting, "default_margin": m}, f"default Gemma margin {m}")
    for n in SHORTLISTS:
        trial({**setting, "shortlist": n}, f"shortlist {n}")
    for n in PASSES_GRID:
        trial({**setting, "passes": n}, f"passes {n}")
    for w in COST_WEIGHTS:
        trial({**setting, "cost_weight": w}, f"spelling cost weight {w}")
    for kind in KINDS:
        current = setting["margin"].get(kind, setting["default_margin"])
        for step in KIND_STEPS:
            margin = {**setting["margin"], kind: current + step}
            trial({**setting, "margin": margin}, f"Gemma margin {kind} {current + step}")
    print(f"best {best:.2f}: {json.dumps(setting)}")


if __name__ == "__main__":
    main()
