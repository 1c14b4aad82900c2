"""Whisper encoder layers as phone evidence: cache each layer's states, then compare the layers.

    nice -n 10 .venv/bin/python bench/tutor_layers.py extract --model base --layers 1 2 3 4 5
    nice -n 10 .venv/bin/python bench/tutor_layers.py extract --model tiny --layers 1 2 3
    nice -n 10 .venv/bin/python bench/tutor_layers.py diag --model base --layers 2 3 4 5 6

``extract`` runs CTranslate2 copies of the model cut after k encoder layers
(``duetto.apps.tutor.whisper_layers``) on the same own-length window as the scorer's evidence and
caches the states under ~/.cache/duetto/tutor_layers/<model>_L<k>/<utt>.npy (k = all layers:
the tutor's own caches). ``diag`` pools each layer's states over the phones' aligned spans and
fits the LDA phone classifier of ``bench/tutor_train.py`` out of fold by speaker on *train*:
it prints how well the own phone's log posterior follows the human phone score and how often
the expected phone of a well-said phone wins.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutor_train  # noqa: E402
from duetto.apps.tutor import corpus, features  # noqa: E402
from duetto.apps.tutor.align import PHONES  # noqa: E402
from duetto.apps.tutor.whisper_layers import truncated_model  # noqa: E402

CACHE = Path.home() / ".cache" / "duetto" / "tutor_layers"
MODELS = {"tiny": ("bundled", 4), "base": ("bundled-base", 6)}
# Well-said phones (human mean at least this, as tutor_train.py) count for phone-ID accuracy.
GOOD = 1.9


def layer_states(model: str, layer: int, utt) -> np.ndarray:
    """Cached encoder states of ``utt`` at ``layer`` (frames, dim) float16."""
    if layer == MODELS[model][1]:
        return corpus.base_states_for(utt) if model == "base" else corpus.whisper_for(utt).states
    return np.load(CACHE / f"{model}_L{layer}" / f"{utt.id}.npy")


def extract(args) -> None:
    from duetto.apps.tutor.whisper_evidence import encoder_states
    from duetto.asr import load_asr
    from duetto.audio import load_audio
    from duetto.config import ASRSettings
    from duetto.models import whisper_model

    name, _ = MODELS[args.model]
    asrs = {}
    for k in args.layers:
        folder = truncated_model(whisper_model(name), k)
        asrs[k] = load_asr(ASRSettings(model=str(folder), threads=args.threads))
        (CACHE / f"{args.model}_L{k}").mkdir(parents=True, exist_ok=True)
    for split in args.split:
        utts = corpus.load(args.data, split)
        todo = [
            u
            for u in utts
            if not all((CACHE / f"{args.model}_L{k}" / f"{u.id}.npy").is_file() for k in asrs)
        ]
        print(f"{split}: {len(utts) - len(todo)}/{len(utts)} cached", flush=True)
        started, cpu = time.perf_counter(), time.process_time()
        for n, utt in enumerate(todo, 1):
            audio = load_audio(utt.audio)
            for k, asr in asrs.items():
                path = CACHE / f"{args.model}_L{k}" / f"{utt.id}.npy"
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, encoder_states(asr, audio)[0])
                tmp.replace(path)
            if n % 100 == 0 or n == len(todo):
                wall = (time.perf_counter() - started) / n
                used = (time.process_time() - cpu) / n
                print(f"{n}/{len(todo)} {wall:.3f} s/utt wall, {used:.3f} s/utt CPU", flush=True)


def spans(split: str, data: Path) -> list[dict]:
    """Per utterance: id, speaker, expected phones, spans and human phone scores (cached)."""
    path = CACHE / f"spans_{split}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    out = []
    for utt in corpus.load(data, split):
        pe = features.phone_evidence(corpus.evidence_for(utt))
        out.append(
            {
                "utt": utt,
                "pe": pe,
                "human": tutor_train.phone_targets(utt, pe),
            }
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def pooled_layer(rows, model: str, layer: int) -> list[np.ndarray]:
    """Each utterance's states of ``layer`` mean-pooled over its phones' spans."""
    out = []
    for r in rows:
        states = layer_states(model, layer, r["utt"])
        dim = states.shape[1]
        pooled = [features._pool(states, p.start, p.end, dim) for p in r["pe"]]
        out.append(np.asarray(pooled, np.float32).reshape(len(r["pe"]), dim))
    return out


def oof_log_posteriors(rows, pooled, clf: str = "lda", hidden: int = 256) -> list[np.ndarray]:
    """Phone log posteriors of each utterance from a classifier that never saw its speaker
    (``tutor_train.fit_phone_classifier``: LDA, or the MLP with ``hidden`` units)."""
    groups = np.array([r["utt"].speaker for r in rows])
    # tutor_train's row shape (utt, evidence, phones, features, whisper) with the pooled states last
    fake = [(r["utt"], None, r["pe"], None, x) for r, x in zip(rows, pooled, strict=True)]
    units = hidden if clf == "mlp" else 0
    out = [None] * len(rows)
    for tr, te in GroupKFold(n_splits=tutor_train.FOLDS).split(np.zeros(len(rows)), groups=groups):
        weights = tutor_train.fit_phone_classifier([fake[i] for i in tr], lambda r: r[4], units)
        for i in te:
            out[i] = features.classifier_log_posteriors(pooled[i], weights)
    return out


def diagnose(rows, logps) -> tuple[float, float, float]:
    """(PCC of own log posterior with the human score, phone-ID accuracy on well-said phones,
    mean within-utterance PCC)."""
    own, human, hit, within = [], [], [], []
    index = {p: i for i, p in enumerate(PHONES)}
    for r, lp in zip(rows, logps, strict=True):
        g = features.gop_features(lp, r["pe"])[:, 0]
        idx = np.array([index.get(p.expected, -1) for p in r["pe"]])
        own.append(g)
        human.append(r["human"])
        good = (r["human"] >= GOOD) & (idx >= 0)
        hit.append(lp.argmax(1)[good] == idx[good])
        keep = ~np.isnan(r["human"])
        if keep.sum() > 2 and r["human"][keep].std() > 0 and g[keep].std() > 0:
            within.append(np.corrcoef(g[keep], r["human"][keep])[0, 1])
    own, human = np.concatenate(own), np.concatenate(human)
    keep = ~np.isnan(human)
    pcc = float(np.corrcoef(own[keep], human[keep])[0, 1])
    return pcc, float(np.concatenate(hit).mean()), float(np.mean(within))


def diag(args) -> None:
    rows = spans("train", args.data)
    print(f"{len(rows)} train utterances, {sum(len(r['pe']) for r in rows)} phones", flush=True)
    cache = {}
    for spec in args.layers:
        parts = [int(k) for k in str(spec).split("+")]
        for k in parts:
            if k not in cache:
                cache[k] = pooled_layer(rows, args.model, k)
        pooled = [np.concatenate([cache[k][i] for k in parts], 1) for i in range(len(rows))]
        started = time.process_time()
        logps = oof_log_posteriors(rows, pooled, args.clf, args.hidden)
        pcc, acc, within = diagnose(rows, logps)
        print(
            f"{args.model} layer {spec} {args.clf}: own log posterior PCC {pcc:.3f}, "
            f"phone ID {100 * acc:.1f}%, within-utterance PCC {within:.3f} "
            f"({time.process_time() - started:.0f} s CPU)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="cache per-layer encoder states")
    ex.add_argument("--model", choices=sorted(MODELS), default="base")
    ex.add_argument("--layers", type=int, nargs="+", required=True)
    ex.add_argument("--split", nargs="+", default=["train", "dev"])
    ex.add_argument("--threads", type=int, default=1)
    dg = sub.add_parser("diag", help="LDA phone classifier per layer, out of fold on train")
    dg.add_argument("--model", choices=sorted(MODELS), default="base")
    dg.add_argument("--layers", nargs="+", required=True, help="k, or k+j to join layers")
    dg.add_argument("--clf", choices=("lda", "mlp"), default="lda")
    dg.add_argument("--hidden", type=int, default=256, help="MLP hidden units")
    for p in (ex, dg):
        p.add_argument("--data", type=Path, default=tutor_train.DATA)
    args = parser.parse_args()
    extract(args) if args.command == "extract" else diag(args)


if __name__ == "__main__":
    main()
