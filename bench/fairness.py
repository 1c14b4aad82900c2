"""ASR word error rate per age band (children under 12, teenagers 12-17, adults 18+) and gender on
speechocean762/dev, with 95% bootstrap confidence intervals, and the largest gap found.

    nice -n 10 .venv/bin/python bench/fairness.py --limit 200
    .venv/bin/python bench/fairness.py --from bench/out/robustness/results.json  # reuse a run
    .venv/bin/python bench/fairness.py --results bench/out/noisy-room-dev/second.jsonl \
        --condition "babble 5 dB"   # any `duetto eval asr --results` file, one condition

Utterances of one speaker are not independent (same voice, same accent), so the bootstrap
resamples *speakers* within each group, not utterances; with 4-10 speakers per group the
intervals are wide, which is the honest answer for 20 speakers.

``--tutor`` adds the tutor's pronunciation scorer (``duetto.apps.tutor``, the shipped weights
unless ``--tutor-weights``): per age band and gender, the mean of predicted minus human utterance
total score (0-10; positive = the tutor is more generous than the experts), with the same speaker
bootstrap, and the mean absolute error. Evidence comes from the tutor's cache when it is there.

    nice -n 10 .venv/bin/python bench/fairness.py --from-cache --tutor
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speechocean762"
TUTOR_WEIGHTS = ROOT / "src" / "duetto" / "apps" / "tutor" / "weights"
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


def tutor_rows(weights: str | None, kind: str | None = None) -> tuple[list[dict], str]:
    """Per dev utterance: the tutor's predicted and the experts' total score, with speaker, age
    and gender; and a line naming the weights used."""
    from duetto.apps.tutor import corpus
    from duetto.apps.tutor.scoring import Scorer

    meta = {}
    for line in (DATA / "dev.jsonl").read_text().splitlines():
        r = json.loads(line)
        meta[r["id"]] = r
    from duetto.apps.tutor.scoring import DEFAULT_SCORER

    kind = kind or DEFAULT_SCORER
    scorer = Scorer(weights=weights, scorer=kind)
    asr = scorer.asr if scorer.models["asr"] else None
    rows = []
    for utt in corpus.load(DATA, "dev"):
        ev = corpus.evidence_for(utt, asr=asr)
        *_, predicted = scorer.predict(ev, corpus.whisper_for(utt, scorer.asr))
        m = meta[utt.id]
        rows.append({"id": utt.id, "speaker": m["speaker"], "age": m["age"],
                     "gender": m["gender"], "predicted": float(predicted[4]),
                     "human": float(utt.scores["total"])})  # fmt: skip
    label = _weights_label(weights)
    if kind == "gopt":  # the transformer blended with the ridge: its own weights file too
        label += " + " + _file_label(TUTOR_WEIGHTS / "gopt.npz")
    return rows, f"scorer {kind}: {label}"


def _weights_label(weights: str | None) -> str:
    return _file_label(Path(weights) if weights else TUTOR_WEIGHTS / "scorer.npz")


def _file_label(path: Path) -> str:
    import hashlib

    data = path.read_bytes()
    return f"{path.name} (sha256 {hashlib.sha256(data).hexdigest()[:12]}, {len(data):,} bytes)"


def score_gap(rows: list[dict], rng: np.random.Generator, n: int = BOOTSTRAP):
    """Mean predicted - human score and its 95% interval, resampling speakers; and the MAE."""
    by_speaker: dict[str, list[float]] = {}
    for r in rows:
        by_speaker.setdefault(r["speaker"], []).append(r["predicted"] - r["human"])
    sums = np.array([[sum(v), len(v)] for v in by_speaker.values()], float)
    point = sums[:, 0].sum() / sums[:, 1].sum()
    idx = rng.integers(0, len(sums), size=(n, len(sums)))
    boot = sums[idx, 0].sum(axis=1) / sums[idx, 1].sum(axis=1)
    mae = float(np.mean([abs(r["predicted"] - r["human"]) for r in rows]))
    return float(point), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)), mae


def tutor_report(
    weights: str | None, seed: int, show: bool = True, kind: str | None = None
) -> dict:
    from duetto.data.evaluate import age_band

    rows, label = tutor_rows(weights, kind)
    rng = np.random.default_rng(seed)
    groups: dict[str, list[dict]] = {"all": rows}
    for r in rows:
        groups.setdefault(f"age: {age_band(r['age'])}", []).append(r)
        groups.setdefault(f"gender: {r['gender']}", []).append(r)
    table = {}
    say = print if show else (lambda *a, **k: None)
    say(f"\ntutor: predicted - human utterance total (0-10), dev, weights {label}")
    say(f"{'group':<22} {'utts':>5} {'spk':>4} {'mean gap':>9}   95% CI          MAE")
    for name, g in sorted(groups.items()):
        gap, lo, hi, mae = score_gap(g, rng)
        table[name] = {"utterances": len(g), "speakers": len({r["speaker"] for r in g}),
                       "mean_gap": gap, "ci95": [lo, hi], "mae": mae}  # fmt: skip
        say(f"{name:<22} {len(g):>5} {table[name]['speakers']:>4} {gap:>+9.2f}   "
              f"{lo:+.2f} to {hi:+.2f}   {mae:.2f}")  # fmt: skip
    return {"weights": label, "groups": table}


def from_cache() -> list[dict]:
    """Clean baseline rows from bench/robustness_full.py's cache (all 400 dev utterances)."""
    import importlib.util

    from duetto.data.textnorm import normalize_text, word_errors

    spec = importlib.util.spec_from_file_location("rf", ROOT / "bench" / "robustness_full.py")
    rf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rf)
    cache = rf.read_cache(rf.cache_file("dev", "fast", 0))
    meta = {}
    for line in (DATA / "dev.jsonl").read_text().splitlines():
        r = json.loads(line)
        meta[r["id"]] = r
    rows = []
    for (uid, cond), rec in cache.items():
        if cond == "clean":
            e, n = word_errors(
                normalize_text(rec["ref"]), normalize_text(rec["decodes"][0]["text"])
            )
            m = meta[uid]
            rows.append({"id": uid, "speaker": m["speaker"], "age": m["age"],
                         "gender": m["gender"], "errors": e, "words": n})  # fmt: skip
    return rows


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
    parser.add_argument(
        "--from-cache", action="store_true", help="clean decodes of bench/robustness_full.py"
    )
    parser.add_argument("--results", type=Path, help="a `duetto eval asr --results` file")
    parser.add_argument(
        "--condition", default="clean", help="its condition to read (e.g. 'babble 5 dB')"
    )
    parser.add_argument("--tutor", action="store_true", help="add the tutor's score gaps")
    parser.add_argument("--tutor-weights", help="scorer weights (default: the shipped ones)")
    parser.add_argument("--tutor-scorer", help="ridge or gopt (default: the tutor's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from duetto.data.evaluate import age_band

    if args.from_cache:
        rows = from_cache()
    elif args.results:
        rows = [r for line in args.results.read_text().splitlines()
                if (r := json.loads(line))["condition"] == args.condition]  # fmt: skip
        if not rows:
            parser.error(f"{args.results}: no results in condition {args.condition!r}")
    elif args.source:
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
        if args.tutor:
            out["tutor"] = tutor_report(
                args.tutor_weights, args.seed, show=False, kind=args.tutor_scorer
            )
        print(json.dumps(out, indent=2))
        return 0
    condition = args.condition if args.results else "clean"
    print(f"ASR WER on speechocean762 dev, {condition}, {len(rows)} utterances; "
          "95% CI by speaker bootstrap")  # fmt: skip
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
    if args.tutor:
        tutor_report(args.tutor_weights, args.seed, kind=args.tutor_scorer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
