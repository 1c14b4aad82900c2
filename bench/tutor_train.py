"""Train the tutor's phone, word and utterance scorers on speechocean762 *train* only.

    nice -n 10 .venv/bin/python bench/tutor_extract.py --split train   # cache evidence first
    nice -n 10 .venv/bin/python bench/tutor_train.py

Writes src/duetto/apps/tutor/weights/scorer.npz. Stacking: the word scorer sees out-of-fold
phone predictions and the utterance scorer out-of-fold phone and word predictions (folds by
speaker), so each level learns from predictions as noisy as those it will get at run time.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold
from sklearn.neural_network import MLPClassifier, MLPRegressor

from duetto.apps.tutor import corpus, features
from duetto.apps.tutor.align import PHONES
from duetto.apps.tutor.model import MLP, OUTPUTS, WEIGHTS, pack

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speechocean762"
# Hidden layers per level; () = a linear (ridge) model. With a few thousand phones and a few
# hundred utterances, MLPs over-fit the 384-dim Whisper states; ridge generalises to new speakers.
HIDDEN = {"phone": (), "word": (), "utterance": ()}
ALPHA = {"phone": 3000.0, "word": 300.0, "utterance": 3000.0}  # on standardised features
ENSEMBLE = 3  # members per scorer: averaging seeds steadies small MLPs
FOLDS = 5


def level_data(utts, use_asr: bool, base: bool = False):
    """Per utterance: evidence, phone evidence, phone features and the human labels. ``base``:
    the Whisper base encoder states ride along in the Whisper evidence (cached by
    ``bench/tutor_extract.py --base``)."""
    rows = []
    for utt in utts:
        ev = corpus.evidence_for(utt)
        if not use_asr:
            ev = _without_asr(ev)
        else:
            ev = corpus.evidence_for(utt, asr=_NoASR())
        wev = corpus.whisper_for(utt)
        if base:
            wev = replace(wev, base_states=corpus.base_states_for(utt, layer=BASE_LAYER))
        pe = features.phone_evidence(ev)
        rows.append((utt, ev, pe, features.phone_features(ev, pe, wev), wev))
    return rows


class _NoASR:
    """Stand-in passed when ASR evidence must already be cached (never decodes)."""

    def transcribe(self, *a, **k):
        raise RuntimeError("ASR evidence missing from cache: run bench/tutor_extract.py --asr")


def _without_asr(ev):
    return replace(ev, asr_words=(), asr_text="", asr_logprob=0.0)


def phone_targets(utt, pe):
    y = np.array([utt.phone_scores.get((p.word, p.index), np.nan) for p in pe])
    return y


def word_targets(utt):
    n = len(utt.words)
    return np.array([utt.word_scores.get(i, (np.nan,) * 3) for i in range(n)], np.float64).reshape(
        n, 3
    )


def utt_targets(utt):
    return np.array([utt.scores[k] for k, _, _ in OUTPUTS["utterance"]])


def fit(level: str, x: np.ndarray, y: np.ndarray, seeds=range(ENSEMBLE)) -> MLP:
    y = y.reshape(len(y), -1)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xs = (x - mean) / scale
    members = []
    if not HIDDEN[level]:
        reg = Ridge(alpha=ALPHA[level]).fit(xs, y)
        members.append(((reg.coef_.T.reshape(x.shape[1], -1), np.atleast_1d(reg.intercept_)),))
        seeds = ()
    for seed in seeds:
        reg = MLPRegressor(
            hidden_layer_sizes=HIDDEN[level], alpha=ALPHA[level], max_iter=300, early_stopping=True,
            random_state=seed, learning_rate_init=1e-3, batch_size=256,
        )  # fmt: skip
        reg.fit(xs, y if y.shape[1] > 1 else y.ravel())
        members.append(tuple((w, b) for w, b in zip(reg.coefs_, reg.intercepts_, strict=True)))
    low = np.array([lo for _, lo, _ in OUTPUTS[level]])
    high = np.array([hi for _, _, hi in OUTPUTS[level]])
    return MLP(mean, scale, tuple(members), low, high)


def with_prototypes(rows):
    """Phone prototypes from the train rows' well-said phones (human mean 2) and the rows with
    the prototype features appended to their phone features."""
    x = np.concatenate([r[3] for r in rows])
    expected = [p.expected for r in rows for p in r[2]]
    human = np.concatenate([phone_targets(r[0], r[2]) for r in rows])
    protos = features.prototypes(x, expected, human >= 2.0)
    out = []
    for r in rows:
        extra = features.prototype_features(r[3], [p.expected for p in r[2]], protos)
        out.append((r[0], r[1], r[2], np.concatenate([r[3], extra], axis=1), r[4]))
    return out, protos


def tiny_states(row) -> np.ndarray:
    """The pooled Whisper tiny.en states of a row's phones (inside its feature rows)."""
    return features.phone_states(row[3])


def base_states(row) -> np.ndarray:
    """The pooled Whisper base states of a row's phones."""
    return features.base_pooled(row[4], row[2])


# Hidden units of the Whisper-GOP phone classifier (0: linear LDA); set by --gop-hidden.
GOP_HIDDEN = 0
# Whisper base encoder layer whose states the base GOP reads (0: the last); --base-layer.
BASE_LAYER = 0
GOP_MLP_ALPHA = 1e-2  # L2 penalty of the MLP phone classifier (sklearn's alpha)


def fit_phone_classifier(rows, states=tiny_states, hidden: int | None = None) -> dict:
    """Phone classifier over the pooled Whisper states of well-said phones (human mean >= 1.9):
    LDA with shrinkage (``hidden`` 0) or a one-hidden-layer ReLU MLP, as the arrays
    ``features.classifier_log_posteriors`` reads, one output per phone in PHONES order (absent
    phones never win)."""
    hidden = GOP_HIDDEN if hidden is None else hidden
    x = np.concatenate([states(r) for r in rows]).astype(np.float64)
    human = np.concatenate([phone_targets(r[0], r[2]) for r in rows])
    index = {p: i for i, p in enumerate(PHONES)}
    label = np.array([index.get(p.expected, -1) for r in rows for p in r[2]])
    keep = (human >= 1.9) & (label >= 0)
    if hidden:
        mean, scale = x[keep].mean(0), x[keep].std(0) + 1e-6
        clf = MLPClassifier(
            hidden_layer_sizes=(hidden,), alpha=GOP_MLP_ALPHA, early_stopping=True,
            random_state=0, max_iter=200, batch_size=256,
        ).fit((x[keep] - mean) / scale, label[keep])  # fmt: skip
        out = {
            "mean": mean,
            "scale": scale,
            "hidden_w": clf.coefs_[0],
            "hidden_b": clf.intercepts_[0],
        }
        weights, bias, classes = clf.coefs_[1].T, clf.intercepts_[1], clf.classes_
    else:
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(x[keep], label[keep])
        out, weights, bias, classes = {}, lda.coef_, lda.intercept_, lda.classes_
    coef = np.zeros((len(PHONES), weights.shape[1]))
    intercept = np.full(len(PHONES), -1e4)
    coef[classes], intercept[classes] = weights, bias
    return {**out, "coef": coef, "intercept": intercept}


def gop_norm(rows, logps) -> np.ndarray:
    """Per phone (PHONES order) mean and std of its own log posterior over the train rows."""
    own = np.concatenate(
        [features.gop_features(lp, r[2])[:, 0] for r, lp in zip(rows, logps, strict=True)]
    )
    names = np.array([p.expected for r in rows for p in r[2]])
    norm = np.stack([np.zeros(len(PHONES)), np.ones(len(PHONES))])
    for i, p in enumerate(PHONES):
        if (names == p).sum() > 1:
            norm[:, i] = own[names == p].mean(), own[names == p].std() + 1e-3
    return norm


def with_gop(rows, folds, groups, states=tiny_states):
    """The rows with Whisper-GOP features appended (out of fold: each utterance's from a classifier
    that never saw its speaker), and the classifier and normalisation fitted on all rows.
    ``states``: which pooled encoder states the classifier reads (tiny.en's or base's)."""
    logps = [None] * len(rows)
    for tr, te in folds.split(np.zeros(len(rows)), groups=groups):
        clf = fit_phone_classifier([rows[i] for i in tr], states)
        for i in te:
            logps[i] = features.classifier_log_posteriors(states(rows[i]), clf)
    norm = gop_norm(rows, logps)
    out = [
        (r[0], r[1], r[2], np.concatenate([r[3], features.gop_features(lp, r[2], norm)], 1), r[4])
        for r, lp in zip(rows, logps, strict=True)
    ]
    return out, {**fit_phone_classifier(rows, states), "norm": norm}


def train(rows, seeds=range(ENSEMBLE), gop: bool = True, base: bool = False) -> dict[str, MLP]:
    """Fit all three levels on ``rows`` with out-of-fold stacking. ``base``: a second Whisper GOP
    from the Whisper base encoder's states (the rows must carry them, ``level_data(base=True)``)."""
    rows, protos = with_prototypes(rows)
    groups = np.array([r[0].speaker for r in rows])
    phone_oof = [None] * len(rows)
    folds = GroupKFold(n_splits=FOLDS)
    gop_model = base_model = None
    if gop:
        rows, gop_model = with_gop(rows, folds, groups)
    if base:
        rows, base_model = with_gop(rows, folds, groups, base_states)
    for tr, te in folds.split(np.zeros(len(rows)), groups=groups):
        model = _fit_phone([rows[i] for i in tr], seeds=[0])
        for i in te:
            phone_oof[i] = model.predict(rows[i][3])[:, 0] if len(rows[i][3]) else np.zeros(0)
    word_x = [features.word_features(r[1], r[2], phone_oof[i], r[4]) for i, r in enumerate(rows)]
    word_oof = [None] * len(rows)
    for tr, te in folds.split(np.zeros(len(rows)), groups=groups):
        model = _fit_word([rows[i] for i in tr], [word_x[i] for i in tr], seeds=[0])
        for i in te:
            word_oof[i] = model.predict(word_x[i])[:, 0]
    phone_model = _fit_phone(rows, seeds)
    word_model = _fit_word(rows, word_x, seeds)
    utt_x = np.array(
        [
            features.utterance_features(r[1], r[2], phone_oof[i], word_oof[i], r[4])
            for i, r in enumerate(rows)
        ]
    )
    utt_y = np.array([utt_targets(r[0]) for r in rows])
    utt_model = fit("utterance", utt_x, utt_y, seeds)
    threshold = error_threshold(rows, phone_oof)
    report_cv(rows, phone_oof, word_oof, utt_x, utt_y, groups)
    return {
        "phone": phone_model,
        "word": word_model,
        "utterance": utt_model,
        "threshold": threshold,
        "prototypes": protos,
        "gop": gop_model,
        "base_gop": base_model,
        "oof": (rows, phone_oof, word_oof, utt_x, utt_model),
    }


def report_cv(rows, phone_oof, word_oof, utt_x, utt_y, groups) -> None:
    """Print speaker-grouped out-of-fold PCC on train at each level (what settings are chosen by)."""
    ph = np.concatenate([phone_targets(r[0], r[2]) for r in rows])
    wh = np.concatenate([word_targets(r[0]) for r in rows])[:, 0]
    utt_oof = np.zeros_like(utt_y)
    for tr, te in GroupKFold(n_splits=FOLDS).split(utt_x, groups=groups):
        utt_oof[te] = fit("utterance", utt_x[tr], utt_y[tr], seeds=[0]).predict(utt_x[te])

    def pcc(a, b):
        keep = ~(np.isnan(a) | np.isnan(b))
        return np.corrcoef(a[keep], b[keep])[0, 1]

    names = [name for name, _, _ in OUTPUTS["utterance"]]
    print(
        f"train CV (out of fold, by speaker): phone {pcc(ph, np.concatenate(phone_oof)):.3f}  "
        f"word accuracy {pcc(wh, np.concatenate(word_oof)):.3f}  "
        + "  ".join(
            f"utterance {n} {pcc(utt_y[:, k], utt_oof[:, k]):.3f}" for k, n in enumerate(names)
        ),
        flush=True,
    )


def error_threshold(rows, phone_oof) -> float:
    """The predicted phone score under which a phone is called mispronounced: the F1-best cut
    against the human labels (mean < 2) on out-of-fold *train* predictions."""
    human = np.concatenate([phone_targets(r[0], r[2]) for r in rows])
    pred = np.concatenate(phone_oof)
    keep = ~np.isnan(human)
    human, pred = human[keep] < 2.0, pred[keep]
    best, best_f1 = 1.5, -1.0
    for cut in np.arange(1.0, 2.0, 0.01):
        called = pred < cut
        tp = float((called & human).sum())
        f1 = 2 * tp / max(called.sum() + human.sum(), 1)
        if f1 > best_f1:
            best, best_f1 = float(cut), f1
    print(f"mispronunciation threshold {best:.2f} (train out-of-fold F1 {best_f1:.3f})")
    return best


def _fit_phone(rows, seeds) -> MLP:
    x = np.concatenate([r[3] for r in rows])
    y = np.concatenate([phone_targets(r[0], r[2]) for r in rows])
    keep = ~np.isnan(y)
    return fit("phone", x[keep], y[keep], seeds)


def _fit_word(rows, word_x, seeds) -> MLP:
    x = np.concatenate(word_x)
    y = np.concatenate([word_targets(r[0]) for r in rows])
    keep = ~np.isnan(y).any(1)
    return fit("word", x[keep], y[keep], seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--asr", action="store_true", help="use cached Whisper transcripts too")
    parser.add_argument(
        "--cached-only", action="store_true", help="train on the utterances already cached"
    )
    parser.add_argument(
        "--no-gop", action="store_true", help="leave out the Whisper-GOP features (ablation)"
    )
    parser.add_argument(
        "--base", action="store_true", help="add a Whisper-GOP from the Whisper base encoder"
    )
    parser.add_argument(
        "--gop-hidden",
        type=int,
        default=GOP_HIDDEN,
        help="hidden units of the Whisper-GOP phone classifiers (0: LDA)",
    )
    parser.add_argument(
        "--base-layer",
        type=int,
        default=BASE_LAYER,
        help="Whisper base encoder layer the base GOP reads (0: the last; bench/tutor_layers.py)",
    )
    args = parser.parse_args()
    globals()["GOP_HIDDEN"] = args.gop_hidden
    globals()["BASE_LAYER"] = args.base_layer
    utts = corpus.load(args.data, "train")
    if args.cached_only:
        cache = corpus.evidence_cache()
        utts = [
            u
            for u in utts
            if (cache / f"{u.id}.json").is_file() and (cache / f"{u.id}.whisper.npz").is_file()
        ]
    rows = level_data(utts, args.asr, base=args.base)
    print(f"{len(rows)} train utterances, {sum(len(r[2]) for r in rows)} phones", flush=True)
    models = train(rows, gop=not args.no_gop, base=args.base)
    arrays = {}
    for level in ("phone", "word", "utterance"):
        arrays.update(pack(level, models[level]))
    arrays["meta.phone_threshold"] = np.array(models["threshold"])
    arrays["phone.prototypes"] = models["prototypes"]
    if models["gop"] is not None:
        for key, value in models["gop"].items():
            arrays[f"phone.gop_{key}"] = value.astype(np.float32)
    if models["base_gop"] is not None:
        for key, value in models["base_gop"].items():
            arrays[f"phone.base_gop_{key}"] = value.astype(np.float32)
        arrays["meta.base_layer"] = np.array(BASE_LAYER)
    arrays["meta.asr"] = np.array(int(args.asr))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
