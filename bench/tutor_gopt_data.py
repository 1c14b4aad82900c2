"""Per-utterance arrays for the GOPT-style scorer, cached under ~/.cache/duetto/tutor/gopt/.

    nice -n 10 .venv/bin/python bench/tutor_gopt_data.py     # train (out of fold) and dev

Train rows carry out-of-fold evidence exactly as ``bench/tutor_train.py`` builds it for the ridge
(Whisper-GOP from a classifier that never saw the speaker) and the ridge's out-of-fold phone, word
and utterance predictions (speaker-grouped 5 folds), so the transformer and a blend with the
ridge can be chosen by cross-validation on train. Dev rows are what the shipped scorer computes
at run time. Nothing here is fitted on dev.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutor_train  # noqa: E402
from duetto.apps.tutor import corpus, features  # noqa: E402
from duetto.apps.tutor.model import WEIGHTS  # noqa: E402

CACHE = Path.home() / ".cache" / "duetto" / "tutor" / "gopt"


def _phone_meta(pe) -> dict:
    index = features._PHONE_INDEX
    return {
        "phone": np.array([index.get(p.expected, -1) + 1 for p in pe], np.int64),  # 0 = unknown
        "word": np.array([p.word for p in pe], np.int64),
        "pos": np.array([p.index for p in pe], np.int64),
    }


def _record(utt, pe, x, ridge_phone, ridge_word, ridge_utt, utt_x) -> dict:
    return {
        "id": utt.id,
        "speaker": utt.speaker,
        "x": x.astype(np.float32),
        **_phone_meta(pe),
        "y_phone": tutor_train.phone_targets(utt, pe),
        "y_word": tutor_train.word_targets(utt),
        "y_utt": tutor_train.utt_targets(utt),
        "ridge_phone": np.asarray(ridge_phone, np.float64),
        "ridge_word": np.asarray(ridge_word, np.float64),
        "ridge_utt": np.asarray(ridge_utt, np.float64),
        "utt_x": np.asarray(utt_x, np.float32),
    }


def train_records(data: Path, base: bool = False) -> list[dict]:
    utts = corpus.load(data, "train")
    rows = tutor_train.level_data(utts, use_asr=False, base=base)
    models = tutor_train.train(rows, seeds=[0], base=base)
    rows, phone_oof, word_oof, utt_x, _ = models["oof"]
    groups = np.array([r[0].speaker for r in rows])
    utt_y = np.array([tutor_train.utt_targets(r[0]) for r in rows])
    utt_oof = np.zeros_like(utt_y)
    word_oof3 = [None] * len(rows)
    word_x = [features.word_features(r[1], r[2], phone_oof[i], r[4]) for i, r in enumerate(rows)]
    folds = GroupKFold(n_splits=tutor_train.FOLDS)
    for tr, te in folds.split(utt_x, groups=groups):
        utt_oof[te] = tutor_train.fit("utterance", utt_x[tr], utt_y[tr], seeds=[0]).predict(
            utt_x[te]
        )
        model = tutor_train._fit_word([rows[i] for i in tr], [word_x[i] for i in tr], seeds=[0])
        for i in te:
            word_oof3[i] = model.predict(word_x[i])
    return [
        _record(r[0], r[2], r[3], phone_oof[i], word_oof3[i], utt_oof[i], utt_x[i])
        for i, r in enumerate(rows)
    ]


def dev_records(data: Path, weights: Path) -> list[dict]:
    from duetto.apps.tutor.scoring import Scorer

    scorer = Scorer(weights=str(weights), scorer="ridge")
    out = []
    for utt in corpus.load(data, "dev"):
        ev = replace(corpus.evidence_for(utt), asr_words=(), asr_text="", asr_logprob=0.0)
        wev = corpus.whisper_for(utt)
        if scorer.uses_base:
            wev = replace(wev, base_states=corpus.base_states_for(utt, layer=scorer.base_layer))
        pe, x = scorer.phone_inputs(ev, wev)
        _, phone, word, u = scorer.predict(ev, wev)
        utt_x = features.utterance_features(ev, pe, phone, word[:, 0], wev)
        out.append(_record(utt, pe, x, phone, word, u, utt_x))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=tutor_train.DATA)
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="ridge weights for dev rows")
    parser.add_argument("--split", choices=("train", "dev", "both"), default="both")
    parser.add_argument(
        "--base",
        action="store_true",
        help="train rows with the Whisper base GOP (tutor_train --base)",
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the rows are written")
    parser.add_argument(
        "--gop-hidden",
        type=int,
        default=tutor_train.GOP_HIDDEN,
        help="hidden units of the Whisper-GOP phone classifiers (0: LDA; as tutor_train.py)",
    )
    parser.add_argument(
        "--base-layer",
        type=int,
        default=tutor_train.BASE_LAYER,
        help="Whisper base encoder layer of the base GOP (0: the last; as tutor_train.py)",
    )
    args = parser.parse_args()
    tutor_train.GOP_HIDDEN = args.gop_hidden
    tutor_train.BASE_LAYER = args.base_layer
    args.cache.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev") if args.split == "both" else (args.split,):
        records = (
            train_records(args.data, args.base)
            if split == "train"
            else dev_records(args.data, args.weights)
        )
        path = args.cache / f"{split}.pkl"
        with path.open("wb") as fh:
            pickle.dump(records, fh, protocol=pickle.HIGHEST_PROTOCOL)
        print(f"{split}: {len(records)} utterances -> {path}", flush=True)


if __name__ == "__main__":
    main()
