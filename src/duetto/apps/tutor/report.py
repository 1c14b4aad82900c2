"""HTML pages: one assessment (``tutor score --html``) and a learner's progress report.

Plots are drawn with matplotlib (Agg) and embedded as base64 PNG, recordings as base64 WAV, so
each report is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np

from duetto.apps.tutor.progress import Attempt
from duetto.apps.tutor.tips import IPA, show
from duetto.errors import MissingExtraError

STYLE = """
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:4px 8px;border-bottom:1px solid #eee;text-align:left}
.card{display:inline-block;margin:6px 10px 6px 0;padding:8px 14px;border-radius:8px;background:#f4f6f8}
.card b{display:block;font-size:1.5em}
.ph{display:inline-block;margin:1px;padding:1px 5px;border-radius:4px;font-family:monospace}
.s2{background:#d8f3dc}.s1{background:#ffe8a3}.s0{background:#ffb3b3}
.miscue{font-size:.85em;color:#a33}.tip{background:#eef5ff;padding:8px 12px;border-radius:6px;margin:6px 0}
img{max-width:100%} .muted{color:#777;font-size:.9em}
"""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")  # fmt: skip


def _cards(values: dict[str, float | str]) -> str:
    return "".join(
        f"<div class='card'>{html.escape(k)}<b>{html.escape(str(v))}</b></div>"
        for k, v in values.items()
    )


def assessment_html(result: dict) -> str:
    """One assessment (``Assessment.to_dict()``) as a page."""
    u, f = result["utterance"], result["fluency"]
    body = [f"<h1>Pronunciation: “{html.escape(result['reference'])}”</h1>"]
    if result.get("transcript"):
        body.append(f"<p class='muted'>Heard: {html.escape(result['transcript'])}</p>")
    body.append(_cards({"Total": u["total"], "Accuracy": u["accuracy"], "Fluency": u["fluency"],
                        "Prosody": u["prosody"], "Completeness": u["completeness"]}))  # fmt: skip
    body.append(_cards({"Words/min": f["words_per_minute"], "Phones/s": f["phones_per_second"],
                        "Pauses": f["pause_count"], "Pause time (s)": f["pause_seconds"],
                        "Longest pause (s)": f["longest_pause"]}))  # fmt: skip
    if result["tips"]:
        body.append(
            "<h2>Tips</h2>"
            + "".join(f"<div class='tip'>{html.escape(t['text'])}</div>" for t in result["tips"])
        )
    rows = []
    for w in result["words"]:
        phones = "".join(
            f"<span class='ph s{p['label']}' title='heard {html.escape(show(p['heard']) if p['heard'] != '-' else 'nothing')}, "
            f"score {p['score']}'>{html.escape(show(p['expected']))}</span>"
            for p in w["phones"]
        )
        acc = "" if w["accuracy"] is None else w["accuracy"]
        stress = "" if w["stress"] is None else w["stress"]
        miscue = "" if w["miscue"] == "none" else f"<span class='miscue'>{w['miscue']}</span>"
        rows.append(
            f"<tr><td>{html.escape(w['word'].lower())}</td><td>{acc}</td><td>{stress}</td><td>{phones}</td><td>{miscue}</td></tr>"
        )
    body.append("<h2>Words</h2><table><tr><th>word</th><th>accuracy</th><th>stress</th><th>phones</th><th></th></tr>"
                + "".join(rows) + "</table>")  # fmt: skip
    body.append(
        "<p class='muted'>Phones: green correct, yellow accented, red wrong or missing; hover for what was heard.</p>"
    )
    if result.get("grammar"):
        g = result["grammar"]
        edits = "".join(f"<li>{html.escape(e['original'])} → {html.escape(e['correction'] or '(delete)')}: "
                        f"{html.escape(e['explanation'])}</li>" for e in g["edits"])  # fmt: skip
        body.append(f"<h2>Grammar</h2><p>{html.escape(g['corrected'])}</p><ul>{edits}</ul>")
    for w in result.get("warnings", []):
        body.append(f"<p class='muted'>Note: {html.escape(w)}</p>")
    return _page("duetto pronunciation", "".join(body))


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("learner reports (matplotlib)", "tutor") from None
    return plt


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _is_error(phone: dict, below: float) -> bool:
    """The scorer's own label when stored (< 2: accented or wrong), else the score cut."""
    return phone["label"] < 2 if "label" in phone else phone["score"] < below


def confusions(attempts: list[Attempt], below: float = 1.5) -> Counter:
    """(expected, heard) counts of the phones scored under ``below``."""
    out: Counter = Counter()
    for a in attempts:
        for w in a.assessment.get("words", []):
            for p in w.get("phones", []):
                if _is_error(p, below):
                    out[(p["expected"], p["heard"])] += 1
    return out


def phone_error_rates(attempts: list[Attempt], below: float = 1.5) -> dict[str, tuple[int, int]]:
    """phone -> (errors, times said)."""
    said: Counter = Counter()
    wrong: Counter = Counter()
    for a in attempts:
        for w in a.assessment.get("words", []):
            for p in w.get("phones", []):
                said[p["expected"]] += 1
                wrong[p["expected"]] += _is_error(p, below)
    return {p: (wrong[p], said[p]) for p in said}


def learner_report(name: str, attempts: list[Attempt]) -> str:
    """The learner's progress as one HTML page."""
    plt = _pyplot()
    body = [f"<h1>Progress report: {html.escape(name)}</h1>"]
    if not attempts:
        body.append(
            "<p>No practice recorded yet. Run <code>duetto tutor practice --learner NAME</code>.</p>"
        )
        return _page(f"duetto report {name}", "".join(body))
    sessions = sorted({a.session for a in attempts})
    first, last = datetime.fromtimestamp(attempts[0].at), datetime.fromtimestamp(attempts[-1].at)
    body.append(f"<p class='muted'>{len(attempts)} sentences in {len(sessions)} sessions, "
                f"{first:%Y-%m-%d} to {last:%Y-%m-%d}.</p>")  # fmt: skip
    recent = attempts[-5:]
    body.append(_cards({
        "Total (last 5)": round(float(np.mean([a.total for a in recent])), 1),
        "Accuracy (last 5)": round(float(np.mean([a.accuracy for a in recent])), 1),
        "Fluency (last 5)": round(float(np.mean([a.fluency for a in recent])), 1),
        "Level now": attempts[-1].level,
    }))  # fmt: skip

    x = np.arange(1, len(attempts) + 1)
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for key, color in (
        ("total", "#1f77b4"),
        ("accuracy", "#2ca02c"),
        ("fluency", "#ff7f0e"),
        ("prosody", "#9467bd"),
    ):
        ax.plot(x, [getattr(a, key) for a in attempts], marker="o", ms=3, label=key, color=color)
    for k in range(1, len(attempts)):
        if attempts[k].session != attempts[k - 1].session:
            ax.axvline(k + 0.5, color="#bbb", lw=0.8, ls="--")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_ylim(0, 10.3)
    ax.set_xlabel("attempt (dashed lines: new session)")
    ax.set_ylabel("score (0-10)")
    ax.set_title("Scores over time")
    ax.legend(loc="lower right", ncol=4, fontsize=8)
    ax.grid(alpha=0.3)
    body.append(
        f"<h2>Score trends</h2><img alt='score trends' src='data:image/png;base64,{_png(fig)}'>"
    )

    fig, ax1 = plt.subplots(figsize=(9, 3.2))
    ax1.plot(
        x,
        [a.words_per_minute for a in attempts],
        marker="o",
        ms=3,
        color="#1f77b4",
        label="words/min",
    )
    ax1.set_ylabel("words per minute", color="#1f77b4")
    ax1.set_xlabel("attempt")
    ax1.xaxis.set_major_locator(_integer_ticks())
    ax2 = ax1.twinx()
    ax2.bar(
        x, [a.pause_seconds for a in attempts], alpha=0.35, color="#d62728", label="pause time (s)"
    )
    ax2.set_ylabel("pause time (s)", color="#d62728")
    ax2.set_ylim(0, max([1.0] + [a.pause_seconds * 1.2 for a in attempts]))
    ax1.set_title("Speech rate and pauses")
    ax1.grid(alpha=0.3)
    body.append(
        f"<h2>Speech rate and pauses</h2><img alt='speech rate' src='data:image/png;base64,{_png(fig)}'>"
    )

    body.append(_confusion_section(plt, attempts))
    body.append(_recordings(attempts))
    return _page(f"duetto report {name}", "".join(body))


def _confusion_section(plt, attempts: list[Attempt]) -> str:
    rates = phone_error_rates(attempts)
    worst = sorted((p for p in rates if rates[p][0]), key=lambda p: -rates[p][0] / rates[p][1])[:12]
    if not worst:
        return "<h2>Phones most often wrong</h2><p>No phone errors so far.</p>"
    table = "".join(f"<tr><td>{html.escape(show(p))}</td><td>{rates[p][0]} of {rates[p][1]}</td>"
                    f"<td>{100 * rates[p][0] / rates[p][1]:.0f}%</td></tr>" for p in worst)  # fmt: skip
    conf = confusions(attempts)
    heard = sorted({h for (e, h) in conf if e in worst}, key=lambda h: (h == "-", h))
    grid = np.array([[conf.get((e, h), 0) for h in heard] for e in worst], float)
    fig, ax = plt.subplots(
        figsize=(max(4.5, 0.45 * len(heard) + 2), max(3, 0.4 * len(worst) + 1.2))
    )
    im = ax.imshow(grid, cmap="Reds", aspect="auto")
    ax.set_xticks(
        range(len(heard)), [("nothing" if h == "-" else IPA.get(h, h)) for h in heard], rotation=45
    )
    ax.set_yticks(range(len(worst)), [IPA.get(e, e) for e in worst])
    ax.set_xlabel("heard")
    ax.set_ylabel("expected")
    ax.set_title("Mispronounced phones: expected vs heard")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if grid[i, j]:
                ax.text(j, i, int(grid[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if grid[i, j] > grid.max() / 2 else "black")  # fmt: skip
    fig.colorbar(im, ax=ax, fraction=0.04)
    return ("<h2>Phones most often wrong</h2><table><tr><th>phone</th><th>errors</th><th>rate</th></tr>"
            f"{table}</table><img alt='confusions' src='data:image/png;base64,{_png(fig)}'>")  # fmt: skip


def _recordings(attempts: list[Attempt]) -> str:
    with_audio = [a for a in attempts if a.recording and Path(a.recording).is_file()]
    if not with_audio:
        return ""
    picks = {"best": max(with_audio, key=lambda a: a.total), "latest": with_audio[-1],
             "hardest for you": min(with_audio, key=lambda a: a.total)}  # fmt: skip
    items = []
    for label, a in picks.items():
        data = base64.b64encode(Path(a.recording).read_bytes()).decode()
        items.append(f"<p><b>{label}</b> (total {a.total}): “{html.escape(a.sentence)}”<br>"
                     f"<audio controls src='data:audio/wav;base64,{data}'></audio></p>")  # fmt: skip
    return "<h2>Example recordings</h2>" + "".join(items)
