"""ASR word error rate per age band (children under 12, teenagers 12-17, adults 18+) and gender on
speechocean762/dev, with 95% bootstrap confidence intervals, and the largest gap found.

    nice -n 10 .venv/bin/python bench/fairness.py --limit 200
    .venv/bin/python bench/fairness.py --from bench/out/robustness/results.json  # reuse a run

Utterances of one speaker are not independent (same voice, same accent), so the bootstrap
resamples *speakers* within each group, not utterances; with 4-10 speakers per group the
intervals are wide, which is the honest answer for 20 speakers. The tutor's pronunciation-score
gap is not measured here yet (the tutor's scorer is another area's work).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speechocean762"
BOOTSTRAP = 2000  # resamples; the 2.5/97.5 percentiles are stable to ~0.5 WER points at this size


def speaker_bootstrap(
    rows: list[dict], rng: np.random.Generator, n: int = BOOTSTRAP
) -> tuple[float, float, float]:
    """Corpus WER of ``rows`` and its 95% interval, resampling speakers with replacement."""
    by_speaker: dict[str, list[int]] = {}
    for r in rows:
        e = by_speaker.setdefault(r["speaker"], [0, 0])
        e[0] += r["errors"]
        e[1] += r["words"]
    counts = np.array(list(by_speaker.values()), float)
    wer = counts[:, 0].sum() / counts[:, 1].sum()
    idx = rng.integers(0, len(counts), size=(n, len(counts)))
    sampled = counts[idx].sum(axis=1)
    boot = sampled[:, 0] / sampled[:, 1]
    return float(wer), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def gap_interval(
    a: list[dict], b: list[dict], rng: np.random.Generator, n: int = BOOTSTRAP
) -> tuple[float, float, float]:
    """WER(a) - WER(b) with a 95% speaker-bootstrap interval."""
    diffs = []
    for _ in range(n):
        diffs.append(_resampled_wer(a, rng) - _resampled_wer(b, rng))
    point = _wer(a) - _wer(b)
    return point, float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def _wer(rows):
    return sum(r["errors"] for r in rows) / sum(r["words"] for r in rows)


def _resampled_wer(rows, rng):
    speakers = sorted({r["speaker"] for r in rows})
    pick = rng.choice(speakers, size=len(speakers), replace=True)
    errors = words = 0
    for s in pick:
        for r in rows:
            if r["speaker"] == s:
                errors += r["errors"]
                words += r["words"]
    return errors / words


def measure(limit: int | None) -> list[dict]:
    from duetto.data.evaluate import Condition, EvalConfig, Evaluator
    from duetto.data.manifest import read_manifest, subset

    utts = subset(read_manifest(DATA / "dev.jsonl"), limit)
    results, _ = Evaluator(EvalConfig()).run(utts, [Condition("clean", None)])
    return [r.to_dict() for r in results]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="utterances of dev (default all 400)"
    )
    parser.add_argument(
        "--from", dest="source", help="results.json of bench/robustness.py (its clean baseline)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from duetto.data.evaluate import age_band

    if args.source:
        report = json.loads(Path(args.source).read_text())
        rows = [r for r in report["runs"]["baseline"]["results"] if r["condition"] == "clean"]
    else:
        rows = measure(args.limit)
    rng = np.random.default_rng(args.seed)
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"age: {age_band(r['age'])}", []).append(r)
        groups.setdefault(f"gender: {r['gender']}", []).append(r)
    table = {}
    for name in sorted(groups):
        g = groups[name]
        wer, lo, hi = speaker_bootstrap(g, rng)
        table[name] = {
            "utterances": len(g),
            "speakers": len({r["speaker"] for r in g}),
            "wer": wer,
            "ci95": [lo, hi],
        }
    gaps = []
    for kind in ("age", "gender"):
        names = [n for n in groups if n.startswith(kind)]
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                point, lo, hi = gap_interval(groups[a], groups[b], rng, n=500)
                gaps.append({"a": a, "b": b, "gap": point, "ci95": [lo, hi]})
    largest = max(gaps, key=lambda g: abs(g["gap"])) if gaps else None
    out = {
        "utterances": len(rows),
        "overall_wer": _wer(rows),
        "groups": table,
        "gaps": gaps,
        "largest_gap": largest,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"ASR WER on speechocean762 dev, clean, {len(rows)} utterances; 95% CI by speaker bootstrap"
    )
    print(f"{'group':<22} {'utts':>5} {'spk':>4} {'WER':>7}   95% CI")
    print(f"{'all':<22} {len(rows):>5} {len({r['speaker'] for r in rows}):>4} {_wer(rows):>7.1%}")
    for name, t in table.items():
        print(
            f"{name:<22} {t['utterances']:>5} {t['speakers']:>4} {t['wer']:>7.1%}   {t['ci95'][0]:.1%}-{t['ci95'][1]:.1%}"
        )
    print()
    for g in gaps:
        print(
            f"gap {g['a']} - {g['b']}: {g['gap']:+.1%} (95% CI {g['ci95'][0]:+.1%} to {g['ci95'][1]:+.1%})"
        )
    if largest:
        sig = (
            "" if largest["ci95"][0] > 0 or largest["ci95"][1] < 0 else " (its interval includes 0)"
        )
        print(f"\nlargest gap: {largest['a']} vs {largest['b']}, {largest['gap']:+.1%} WER{sig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
