"""Noise-invariant self-distillation of the bundled Whisper tiny.en (issue 6, a measurement).

bench/asr_finetune.py trained LoRA adapters on speechocean762's *human* transcripts: every
speechocean762 figure improved, but most of it was adaptation to the corpus (its prompts, its
spelling), the clean WER moved as much as the noisy one, and other speech got worse. Here the
targets are the bundled model's *own* transcripts of the clean audio (the engine's decode:
int8, greedy, trimmed window), so the student learns one thing only: on noisy audio, write what
the teacher writes on the clean recording. On clean audio it is asked to repeat itself, which
keeps its clean behaviour (and its clean WER) where it was.

Same data hygiene, model, mixing, held-out speakers and evaluation as bench/asr_finetune.py
(its functions are reused; its cache holds the train audio): no human transcript of train is a
target; the held-out and dev WERs are against the human references.

    R="nice -n 10 .venv/bin/python bench/asr_distill.py"
    $R labels                                  # the teacher's clean transcripts of train
    $R train --name sd8qv --steps 360 --eval-every 120
    .venv/bin/python bench/asr_finetune.py dev --name sd8qv --step STEP    # dev, once
    .venv/bin/python bench/asr_finetune.py bank --name sd8qv --step STEP   # out of domain
    $R export --name sd8qv --step 120 --out src/duetto/asr/robust-tiny-en-lora.npz   # shipped
    $R labels --base && $R train --base --name sdbase --steps 120 --eval-every 60 --threads 2
    $R noisy-held --base --name sdbase --step 120   # the word filter's held set, babble 5 dB

The step is the one with the lowest held-out babble 5 dB WER whose held-out clean WER is at
most 2% over the bundled model's (docs/robustness.md has the runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import asr_finetune as F  # noqa: E402

LABELS = F.CACHE / "teacher-labels.json"


def labels(args) -> int:
    """The engine's transcript of every clean training utterance (resumable)."""
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings

    audio_cache = pickle.loads((F.CACHE / "train-audio.pkl").read_bytes())
    train, _, _ = F.speakers_split()
    labels_path = _labels_path(args.teacher)
    done = json.loads(labels_path.read_text()) if labels_path.exists() else {}
    model = str(F.bundled_dir()) if args.teacher == "bundled" else args.teacher
    asr = WhisperASR(ASRSettings(model=model, threads=1))
    started = time.perf_counter()
    for k, u in enumerate(train):
        if u.id in done:
            continue
        done[u.id] = asr.transcribe(audio_cache[u.id][0]).text.strip()
        if k % 100 == 0:
            labels_path.write_text(json.dumps(done))
            print(f"  {k}/{len(train)} ({time.perf_counter() - started:.0f} s)", flush=True)
    labels_path.write_text(json.dumps(done))
    empty = sum(1 for t in done.values() if not t)
    print(f"{len(done)} teacher transcripts ({empty} empty)")
    return 0


def use_base() -> None:
    """Teacher and student are the bundled multilingual Whisper base instead of tiny.en."""
    global LABELS
    from duetto.models import whisper_model

    folder = Path(whisper_model("bundled-base"))
    F.bundled_dir = lambda: folder
    LABELS = F.CACHE / "teacher-labels-base.json"


def _labels_path(teacher: str) -> Path:
    if teacher == "bundled":
        return LABELS
    return F.CACHE / f"teacher-labels-{teacher.replace('/', '_')}.json"


def train(args) -> int:
    """bench/asr_finetune.py's training loop with the teacher's transcripts as targets; with
    ``--teacher NAME`` (a model name such as ``bundled-robust``) the labels are that model's and
    the student starts from its weights (a second round of self-distillation)."""
    teacher = json.loads(_labels_path(args.teacher).read_text())
    split = F.speakers_split
    if args.teacher != "bundled":
        from duetto.asr.adapters import read_model_bin
        from duetto.models import whisper_model

        start = Path(whisper_model(args.teacher)) / "model.bin"
        F.load_bundled = lambda: read_model_bin(start)

    def pseudo_split():
        train_utts, heldout, babble = split()
        relabelled = [dataclasses.replace(u, text=teacher[u.id]) for u in train_utts
                      if teacher.get(u.id)]  # fmt: skip
        return relabelled, heldout, babble

    F.speakers_split = pseudo_split
    if args.babble_share is not None:  # more of the batches in babble, at 0-15 dB
        rest = (1.0 - args.babble_share) / 2
        F.CONDITIONS = (("clean", 0, 0, rest), ("babble", 0.0, 15.0, args.babble_share),
                        ("white", 5.0, 20.0, rest))  # fmt: skip
    F.cased = str.strip  # the teacher already writes Whisper's casing and punctuation
    if args.base:  # the held-out figures of bundled base itself, for the clean budget
        reference = F.CACHE / "runs" / "heldout-bundled-base.json"
        if not reference.exists():
            audio_cache = pickle.loads((F.CACHE / "train-audio.pkl").read_bytes())
            clips = F.heldout_clips(split()[1], audio_cache)
            result = F.evaluate_heldout("bundled-base", str(F.bundled_dir()), clips)
            reference.write_text(json.dumps(result))
    return F.train(args)


def export(args) -> int:
    """A run's adapters at ``--step`` as the float32 deltas ``duetto.asr.adapters`` merges."""
    import numpy as np

    deltas = F.export_deltas(F.CACHE / "runs" / args.name / f"lora-{args.step}.npz")
    np.savez_compressed(args.out, **{k: v.astype(np.float32) for k, v in deltas.items()})
    print(f"{args.out}: {len(deltas) // 2} adapted weight blocks")
    return 0


NOISY_TURN = {  # the noisy-turn settings a model is read with on the word filter's held set
    "learned filter 0.5": dict(word_filter="learned", word_filter_threshold=0.5),
    "fixed filters": dict(min_word_prob=0.3, min_word_level_db=-15.0),
}


def noisy_held(args) -> int:
    """A model (``--name`` at ``--step``, or a model name) on the word filter's held set in
    babble at 5 dB: beam 5 under the 20 dB gate, with the learned or the fixed word filters."""
    import numpy as np

    import word_filter as W
    from duetto.config import ASRSettings

    model = str(F.model_folder(args.name, args.step)) if args.step else args.name
    rows = [r for r in W._read(W._index("held")) if r["condition"] == "babble 5"]
    clips = [(np.load(W._clip("held", r["id"], r["condition"])).astype(np.float32), r["ref"])
             for r in rows]  # fmt: skip
    for label, filters in NOISY_TURN.items():
        settings = ASRSettings(model=model, filter_below_snr_db=20.0, noisy_beam_size=5,
                               threads=args.threads, **filters)  # fmt: skip
        wer, _ = F.decode_wer(model, clips, settings=settings)
        print(f"{args.name}@{args.step or '-'}, {label}: held babble 5 dB {100 * wer:.1f}%")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    lab = sub.add_parser("labels")
    lab.add_argument("--teacher", default="bundled", help="the model whose transcripts are targets")
    t = sub.add_parser("train")
    t.add_argument("--name", required=True)
    t.add_argument("--steps", type=int, default=360)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--rank", type=int, default=8)
    t.add_argument("--targets", default="q,v")
    t.add_argument("--eval-every", type=int, default=120)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--teacher", default="bundled", help="labels and starting weights (see labels)")
    t.add_argument(
        "--babble-share",
        type=float,
        default=None,
        help="share of babble (0-15 dB) batches; default: asr_finetune's mix",
    )
    t.add_argument(
        "--state-weight",
        type=float,
        default=0.0,
        help="also pull the encoder's output on the noisy mix towards the bundled encoder's on "
        "the clean recording (relative squared distance, this weight); 0: off",
    )
    t.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("export")
    e.add_argument("--name", required=True)
    e.add_argument("--step", type=int, required=True)
    e.add_argument("--out", required=True)
    h = sub.add_parser("noisy-held")
    h.add_argument("--name", required=True, help="a run (with --step) or a model name")
    h.add_argument("--step", type=int, default=0)
    h.add_argument("--threads", type=int, default=2)
    for p in (lab, t, h, e):
        p.add_argument(
            "--base", action="store_true", help="Whisper base (bundled-base), not tiny.en"
        )
    args = parser.parse_args()
    if getattr(args, "base", False):
        use_base()
    steps = {"labels": labels, "train": train, "export": export, "noisy-held": noisy_held}
    return steps[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
