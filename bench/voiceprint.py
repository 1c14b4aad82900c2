"""Equal error rate of voiceprint verification on speechocean762 dev, step by step.

Protocol (issue 10): each of the 20 dev speakers is enrolled on 3 utterances and tested on the
rest (target trials); an equal number of impostor trials pairs each enrolment with utterances of
other speakers of the same gender and age band (children under 12 vs. older).

Steps, each measured:
  0. Resemblyzer on the raw file, enrolment = the 3 utterances joined, cosine score;
  1. Resemblyzer's own preprocessing (webrtcvad speech-only trimming, level normalisation);
  2. our Silero VAD instead of webrtcvad for the speech-only cut;
  3. (on 1) enrolment = mean of the 3 unit-length utterance embeddings;
  4. (on 3) S-norm against a cohort of 50 speechocean762 *train* speakers;
  5. the Silero-VAD embedding fused with it (mean of the two S-normalised scores);
  6. (on 3) domain centring: the mean embedding of all train utterances is subtracted and the
     result length-normalised (``domain_mean.npz``; what ``fusion=False`` scores);
  7. (on 6) denser, overlapping partial windows (``embed_utterance(rate=8)``, 1.3 is the default);
  8. a second system alone: MFCC GMM-UBM, MAP-adapted means, log-likelihood ratio
     (``duetto.safety.gmm_ubm``; the UBM fitted on the train half / all of train);
  9. 6 and 8 fused: each score standardised by its train-cv mean and std, weighted sum with the
     weight chosen on the train cross-validation (``ubm.npz``; what duetto shipped before 10);
 10. each system S-normalised against a cohort of train speakers of the enrolled speaker's group
     (child / woman / man, guessed from the voice or declared), then fused
     (``duetto.safety.cohort``, ``cohort.npz``; what duetto ships).
Every choice was made on train (two halves of its 100 speakers: fit on one, score the other);
the thresholds are the equal-error points of that cross-validation (never dev).

    .venv/bin/python bench/voiceprint.py                 # the table (embeddings, UBMs cached)
    .venv/bin/python bench/voiceprint.py --write-domain  # rebuild src/duetto/safety/domain_mean.npz
    .venv/bin/python bench/voiceprint.py --write-ubm     # rebuild src/duetto/safety/ubm.npz
    .venv/bin/python bench/voiceprint.py --write-cohort  # rebuild src/duetto/safety/cohort.npz
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DUETTO_SHARED_DATA", ROOT.parent / "shared" / "data"))
SO = DATA / "speechocean762"
CACHE = Path.home() / ".cache" / "duetto" / "bench-voiceprint"
N_ENROL = 3
EMBED_DIM = 256
# Train speakers are split: the first half is the S-norm cohort, the second calibrates the
# threshold. Utterances per train speaker used (the cohort entry averages them).
COHORT_SPEAKERS = 50
TRAIN_UTTS = 8
# GMM-UBM (step 8): components, MAP relevance factor, every n-th train frame used to fit the UBM
# (halves EM's cost; 2,000 utterances still give ~250k frames). Chosen on the train cv.
UBM_COMPONENTS = 256
RELEVANCE = 16.0
UBM_FRAME_STEP = 2
# Step 10: MAP relevance of the GMM voiceprints (8 beat 4, 16 and 32 on the train cv once
# normalised) and enrolment utterances per cohort speaker (as many as an enrolment).
COHORT_RELEVANCE = 8.0
COHORT_UTTS = N_ENROL
# Fusion weights of the GMM score tried on the train cross-validation.
FUSION_WEIGHTS = np.round(np.linspace(0.0, 1.0, 21), 2)


def rows(split: str) -> list[dict]:
    return [json.loads(line) for line in open(SO / f"{split}.jsonl")]


def band(row: dict) -> tuple[str, bool]:
    return row["gender"], row["age"] < 12


def embeddings(items: list[dict], variant: str) -> dict[str, np.ndarray]:
    """Embedding per utterance id, for variant raw | shipped | rate8 | vad (cached on disk)."""
    from duetto.audio import load_audio
    from duetto.safety import voiceprint as V

    CACHE.mkdir(parents=True, exist_ok=True)
    file = CACHE / f"{variant}.npz"
    cached = dict(np.load(file)) if file.exists() else {}
    missing = [r for r in items if r["id"] not in cached]
    for i, r in enumerate(missing):
        audio = load_audio(SO / r["audio"])
        if variant == "raw":
            cached[r["id"]] = V.embed(audio, trim=False)
        elif variant in ("shipped", "rate8"):
            from resemblyzer import preprocess_wav

            rate = 8 if variant == "rate8" else 1.3
            e = V._encoder().embed_utterance(preprocess_wav(audio, 16_000), rate=rate)
            cached[r["id"]] = e / np.linalg.norm(e)
        else:
            cached[r["id"]] = V.embed(audio, vad="silero")
        if i % 200 == 199:
            np.savez(file, **cached)
    if missing:
        np.savez(file, **cached)
    return cached


def joined_embedding(items: list[dict], variant: str) -> np.ndarray:
    """One embedding of the enrolment utterances joined into one signal (steps 0-2)."""
    from duetto.audio import load_audio
    from duetto.safety import voiceprint as V

    audio = np.concatenate([load_audio(SO / r["audio"]) for r in items])
    if variant == "shipped":
        from resemblyzer import preprocess_wav

        e = V._encoder().embed_utterance(preprocess_wav(audio, 16_000))
        return e / np.linalg.norm(e)
    return V.embed(audio, trim=variant == "vad", vad="silero")


def trials(items: list[dict], seed: int = 0):
    """(enrol rows, target test rows) per speaker, and (enrolled speaker, impostor row) pairs."""
    by_speaker = defaultdict(list)
    for r in items:
        by_speaker[r["speaker"]].append(r)
    rng = np.random.default_rng(seed)
    enrol, targets, impostors = {}, [], []
    for spk, utts in sorted(by_speaker.items()):
        enrol[spk] = utts[:N_ENROL]
        targets += [(spk, r) for r in utts[N_ENROL:]]
    enrol_ids = {r["id"] for utts in enrol.values() for r in utts}
    pools = {}
    for spk, _ in targets:
        if spk not in pools:
            pools[spk] = [r for r in items if r["speaker"] != spk and band(r) == band(enrol[spk][0])
                          and r["id"] not in enrol_ids]  # fmt: skip
        impostors.append((spk, pools[spk][int(rng.integers(len(pools[spk])))]))
    return enrol, targets, impostors


def eer(target: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Equal error rate and the threshold where it occurs."""
    thresholds = np.sort(np.concatenate([target, impostor]))
    best = (1.0, 0.0)
    for t in thresholds:
        frr = np.mean(target < t)
        far = np.mean(impostor >= t)
        gap = abs(frr - far)
        if gap < best[0]:
            best = (gap, t, (frr + far) / 2)
    return best[2], best[1]


def snorm(score: float, enrol: np.ndarray, test: np.ndarray, cohort: np.ndarray) -> float:
    """Symmetric score normalisation: mean of the score's z-values against both cohort lists."""
    zs = [(score - (cohort @ e).mean()) / ((cohort @ e).std() + 1e-6) for e in (enrol, test)]
    return float(np.mean(zs))


def score_all(items, variant: str, enrol_mode: str, cohort: np.ndarray | None = None,
              mean: np.ndarray | None = None):  # fmt: skip
    """Target and impostor scores; ``mean``: centre on it (the shipped scoring, step 6)."""
    from duetto.safety.voiceprint import centred, enrol_embedding

    enrol, targets, impostors = trials(items)
    emb = embeddings(items, variant)
    if mean is not None:
        prints = {s: enrol_embedding([emb[r["id"]] for r in u], mean) for s, u in enrol.items()}
        test = {k: centred(v, mean) for k, v in emb.items()}
    else:
        no_mean = np.zeros(EMBED_DIM, np.float32)
        test = emb
        prints = {}
        for spk, utts in enrol.items():
            if enrol_mode == "joined":
                prints[spk] = joined_embedding(utts, variant)
            else:
                prints[spk] = enrol_embedding([emb[r["id"]] for r in utts], no_mean)

    def score(spk, r):
        cos = float(prints[spk] @ test[r["id"]])
        return snorm(cos, prints[spk], test[r["id"]], cohort) if cohort is not None else cos

    t = np.array([score(s, r) for s, r in targets])
    i = np.array([score(s, r) for s, r in impostors])
    return t, i


def domain_mean(items: list[dict], variant: str = "shipped") -> np.ndarray:
    """Mean utterance embedding of ``items`` (train only)."""
    emb = embeddings(items, variant)
    return np.mean([emb[r["id"]] for r in items], axis=0).astype(np.float32)


def train_halves(train: list[dict]) -> list[tuple[list[dict], list[dict]]]:
    """(fit, score) pairs: train's speakers split in two interleaved halves, both ways round."""
    speakers = sorted({r["speaker"] for r in train})
    a, b = set(speakers[0::2]), set(speakers[1::2])
    half = [[r for r in train if r["speaker"] in s] for s in (a, b)]
    return [(half[0], half[1]), (half[1], half[0])]


def centring_cv(train: list[dict], variant: str = "shipped") -> tuple[float, float]:
    """Cross-validated EER and equal-error threshold of step 6 on train."""
    rates, thresholds = [], []
    for fit, held in train_halves(train):
        rate, threshold = eer(*score_all(held, variant, "mean", mean=domain_mean(fit, variant)))
        rates.append(rate)
        thresholds.append(threshold)
    return float(np.mean(rates)), float(np.mean(thresholds))


def build_cohort(train: list[dict], variant: str = "shipped") -> tuple[np.ndarray, list[dict]]:
    """Cohort embeddings from the first COHORT_SPEAKERS train speakers; the rest for calibration."""
    from duetto.safety.voiceprint import enrol_embedding

    no_mean = np.zeros(EMBED_DIM, np.float32)
    by_speaker = defaultdict(list)
    for r in train:
        by_speaker[r["speaker"]].append(r)
    speakers = sorted(by_speaker)
    cohort_rows = [r for s in speakers[:COHORT_SPEAKERS] for r in by_speaker[s][:TRAIN_UTTS]]
    calib_rows = [
        r for s in speakers[COHORT_SPEAKERS:] for r in by_speaker[s][: N_ENROL + TRAIN_UTTS]
    ]
    emb = embeddings(cohort_rows + calib_rows, variant)
    cohort = np.stack(
        [
            enrol_embedding([emb[r["id"]] for r in by_speaker[s][:TRAIN_UTTS]], no_mean)
            for s in speakers[:COHORT_SPEAKERS]
        ]
    )
    return cohort, calib_rows


def mfccs(items: list[dict]) -> dict[str, np.ndarray]:
    """Raw MFCCs of the webrtcvad-kept speech per utterance id (cached on disk)."""
    from duetto.audio import load_audio
    from duetto.safety import gmm_ubm
    from duetto.safety.voiceprint import webrtc_speech

    CACHE.mkdir(parents=True, exist_ok=True)
    file = CACHE / "mfcc20.npz"
    cached = dict(np.load(file)) if file.exists() else {}
    missing = [r for r in items if r["id"] not in cached]
    for r in missing:
        cached[r["id"]] = gmm_ubm.mfcc(webrtc_speech(load_audio(SO / r["audio"])))
    if missing:
        np.savez(file, **cached)
    return cached


def fit_ubm(fit: list[dict]):
    """UBM of the ``fit`` utterances' frames (cached per set of utterances)."""
    import hashlib

    from duetto.safety import gmm_ubm

    key = hashlib.sha1(",".join(sorted(r["id"] for r in fit)).encode()).hexdigest()[:10]
    file = CACHE / f"ubm-C{UBM_COMPONENTS}-s{UBM_FRAME_STEP}-{key}.npz"
    if file.exists():
        z = np.load(file)
        return gmm_ubm.GMM(z["weights"], z["means"], z["variances"])
    feats = mfccs(fit)
    frames = np.concatenate([gmm_ubm.features(feats[r["id"]]) for r in fit])[::UBM_FRAME_STEP]
    ubm = gmm_ubm.train_ubm(frames, UBM_COMPONENTS)
    np.savez(file, weights=ubm.weights, means=ubm.means, variances=ubm.variances)
    return ubm


def gmm_scores(fit: list[dict], held: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Step 8: target and impostor log-likelihood ratios on ``held``, UBM fitted on ``fit``."""
    from duetto.safety import gmm_ubm

    ubm = fit_ubm(fit)
    feats = {k: gmm_ubm.features(v) for k, v in mfccs(held).items()}
    enrol, targets, impostors = trials(held)
    models = {
        spk: ubm.map_means(sum(ubm.stats(feats[r["id"]]) for r in utts), RELEVANCE)
        for spk, utts in enrol.items()
    }
    t = np.array([ubm.llr(models[s], feats[r["id"]]) for s, r in targets])
    i = np.array([ubm.llr(models[s], feats[r["id"]]) for s, r in impostors])
    return t, i


def fusion_fit(train: list[dict]) -> dict:
    """Steps 6 and 8 on the train cross-validation; the fusion weight and threshold chosen there."""
    folds = []
    for fit, held in train_halves(train):
        res = score_all(held, "shipped", "mean", mean=domain_mean(fit))
        folds.append((res, gmm_scores(fit, held)))
    res_all = np.concatenate([np.concatenate(f[0]) for f in folds])
    gmm_all = np.concatenate([np.concatenate(f[1]) for f in folds])
    norm = dict(res_mean=float(res_all.mean()), res_std=float(res_all.std()),
                gmm_mean=float(gmm_all.mean()), gmm_std=float(gmm_all.std()))  # fmt: skip

    def fused(res, gmm, w):
        a = [(x - norm["res_mean"]) / norm["res_std"] for x in res]
        b = [(x - norm["gmm_mean"]) / norm["gmm_std"] for x in gmm]
        return (1 - w) * a[0] + w * b[0], (1 - w) * a[1] + w * b[1]

    cv = {float(w): [eer(*fused(r, g, w)) for r, g in folds] for w in FUSION_WEIGHTS}
    weight = min(cv, key=lambda w: (np.mean([e for e, _ in cv[w]]), w))
    return dict(norm, weight=weight, cv=cv, fused=fused,
                gmm_cv=float(np.mean([eer(*g)[0] for _, g in folds])),
                threshold=float(np.mean([t for _, t in cv[weight]])))  # fmt: skip


def make_cohort(fit: list[dict]):
    """Step 10's cohort built from the ``fit`` speakers (first 3 utterances each), with the
    group classifier fitted on all their utterances; fusion constants left at defaults."""
    from duetto.safety import cohort as C
    from duetto.safety import gmm_ubm
    from duetto.safety.voiceprint import centred, enrol_embedding

    mean, ubm = domain_mean(fit), fit_ubm(fit)
    emb, mf = embeddings(fit, "shipped"), mfccs(fit)
    by = defaultdict(list)
    for r in fit:
        by[r["speaker"]].append(r)
    utts = [u[:COHORT_UTTS] for _, u in sorted(by.items())]
    res = np.stack([enrol_embedding([emb[r["id"]] for r in u], mean) for u in utts])
    gmm = np.stack([
        ubm.map_means(sum(ubm.stats(gmm_ubm.features(mf[r["id"]])) for r in u), COHORT_RELEVANCE)
        for u in utts
    ])  # fmt: skip
    groups = np.array([C.group_of(u[0]["gender"], u[0]["age"]) for u in utts])
    classifier = C.fit_classifier([centred(emb[r["id"]], mean) for r in fit],
                                  [C.group_of(r["gender"], r["age"]) for r in fit])  # fmt: skip
    return C.Cohort(res, gmm, groups, COHORT_RELEVANCE, ubm.fingerprint, classifier), mean, ubm


def cohort_scores(fit: list[dict], held: list[dict], declared: bool = False):
    """Step 10 on ``held`` with a cohort from ``fit``: S-normalised (centred cosine, LLR) of
    the target and impostor trials, (n, 2) each; the group guessed from the enrolment's
    voiceprint, or ``declared`` (the speaker's metadata)."""
    from duetto.safety import cohort as C
    from duetto.safety import gmm_ubm
    from duetto.safety.voiceprint import centred, enrol_embedding

    cohort, mean, ubm = make_cohort(fit)
    emb, mf = embeddings(held, "shipped"), mfccs(held)
    clip = {r["id"]: (centred(emb[r["id"]], mean), gmm_ubm.features(mf[r["id"]])) for r in held}
    enrol, targets, impostors = trials(held)
    models = {}
    for spk, utts in enrol.items():
        voiceprint = enrol_embedding([emb[r["id"]] for r in utts], mean)
        group = (C.group_of(utts[0]["gender"], utts[0]["age"]) if declared
                 else cohort.predict_group(voiceprint))  # fmt: skip
        means = ubm.map_means(sum(ubm.stats(clip[r["id"]][1]) for r in utts), cohort.relevance)
        stats = cohort.enrolment_stats(ubm, [clip[r["id"]] for r in utts], group)
        models[spk] = (voiceprint, means, stats, group)

    def trial(spk, r):
        voiceprint, means, stats, group = models[spk]
        test = clip[r["id"]]
        raw = (float(voiceprint @ test[0]), ubm.llr(means, test[1]))
        return cohort.normalised(ubm, raw, stats, test, group)

    return (np.array([trial(s, r) for s, r in targets]),
            np.array([trial(s, r) for s, r in impostors]))  # fmt: skip


def cohort_fusion(train: list[dict], declared: bool = False) -> dict:
    """Step 10 on the train cross-validation: standardising constants, weight and threshold."""
    folds = [cohort_scores(fit, held, declared) for fit, held in train_halves(train)]
    pooled = np.concatenate([np.concatenate(f) for f in folds])
    m, sd = pooled.mean(0), pooled.std(0)
    norm = dict(
        res_mean=float(m[0]), res_std=float(sd[0]), gmm_mean=float(m[1]), gmm_std=float(sd[1])
    )

    def fused(scores, w):
        z = [(x - m) / sd for x in scores]
        return (1 - w) * z[0][:, 0] + w * z[0][:, 1], (1 - w) * z[1][:, 0] + w * z[1][:, 1]

    cv = {float(w): [eer(*fused(f, w)) for f in folds] for w in FUSION_WEIGHTS}
    weight = min(cv, key=lambda w: (np.mean([e for e, _ in cv[w]]), w))
    return dict(norm, weight=weight, cv=cv, fused=fused,
                threshold=float(np.mean([t for _, t in cv[weight]])))  # fmt: skip


def main() -> None:
    import torch

    torch.set_num_threads(1)  # a small LSTM: threads only fight over a busy laptop CPU
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-domain", action="store_true", help="rewrite src/duetto/safety/domain_mean.npz"
    )
    parser.add_argument(
        "--write-ubm", action="store_true", help="rewrite src/duetto/safety/ubm.npz (UBM + fusion)"
    )
    parser.add_argument(
        "--write-cohort", action="store_true",
        help="rewrite src/duetto/safety/cohort.npz (cohort, group classifier, fusion)",
    )  # fmt: skip
    args = parser.parse_args()
    dev, train = rows("dev"), rows("train")
    cohort, _ = build_cohort(train, "shipped")
    cohort_vad, _ = build_cohort(train, "vad")
    mean = domain_mean(train, "shipped")
    if args.write_domain:
        out = ROOT / "src" / "duetto" / "safety" / "domain_mean.npz"
        np.savez_compressed(out, mean=mean)
        print(f"wrote {out} (mean of {len(train)} train utterances)")
    enrol, targets, impostors = trials(dev)
    print(f"speechocean762 dev: {len(enrol)} speakers, {len(targets)} target and {len(impostors)} "
          f"impostor trials (same gender and age band), enrolment on {N_ENROL} utterances")  # fmt: skip
    print(f"{'step':<62} {'train cv':>8} {'dev EER':>8}")
    steps = [
        ("0 raw audio, joined enrolment, cosine", "raw", "joined", None),
        ("1 Resemblyzer's preprocessing (webrtcvad trim)", "shipped", "joined", None),
        ("2 Silero VAD speech-only instead of webrtcvad", "vad", "joined", None),
        ("3 on 1: enrolment = mean of unit utterance embeddings", "shipped", "mean", None),
        ("4 on 3: S-norm against 50 train speakers", "shipped", "mean", cohort),
        ("  (S-norm on 1's joined enrolment: shipped before)", "shipped", "joined", cohort),
    ]
    for title, variant, mode, coh in steps:
        rate, _ = eer(*score_all(dev, variant, mode, coh))
        print(f"{title:<62} {'':>8} {rate:>8.2%}", flush=True)
    t1, i1 = score_all(dev, "shipped", "joined", cohort)
    t2, i2 = score_all(dev, "vad", "joined", cohort_vad)
    rate, _ = eer((t1 + t2) / 2, (i1 + i2) / 2)
    print(f"{'5 S-norm (joined) fused with the Silero-VAD embedding':<62} {'':>8} {rate:>8.2%}")
    cv_rate, threshold = centring_cv(train, "shipped")
    t, i = score_all(dev, "shipped", "mean", mean=mean)
    rate, _ = eer(t, i)
    print(f"{'6 on 3: centred on the train mean (fusion=False)':<62} {cv_rate:>8.2%} {rate:>8.2%}")
    cv8, _ = centring_cv(train, "rate8")
    rate8, _ = eer(*score_all(dev, "rate8", "mean", mean=domain_mean(train, "rate8")))
    print(f"{'7 on 6: overlapping partials (rate 8 instead of 1.3)':<62} {cv8:>8.2%} {rate8:>8.2%}")
    fusion = fusion_fit(train)
    t8, i8 = gmm_scores(train, dev)
    print(f"{'8 MFCC GMM-UBM alone (LLR)':<62} {fusion['gmm_cv']:>8.2%} {eer(t8, i8)[0]:>8.2%}")
    for w in FUSION_WEIGHTS:
        cv_w = np.mean([e for e, _ in fusion["cv"][float(w)]])
        dev_w = eer(*fusion["fused"]((t, i), (t8, i8), float(w)))[0]
        mark = "  <- chosen on train cv" if float(w) == fusion["weight"] else ""
        print(f"{f'   fused, GMM weight {w:.2f}':<62} {cv_w:>8.2%} {dev_w:>8.2%}{mark}")
    tf, i_f = fusion["fused"]((t, i), (t8, i8), fusion["weight"])
    cv_f = np.mean([e for e, _ in fusion["cv"][fusion["weight"]]])
    print(f"{'9 6 + 8 fused (shipped before 10)':<62} {cv_f:>8.2%} {eer(tf, i_f)[0]:>8.2%}")
    for declared in (True, False):
        fit10 = cohort_fusion(train, declared)
        dev10 = cohort_scores(train, dev, declared)
        for w in FUSION_WEIGHTS:
            cv_w = np.mean([e for e, _ in fit10["cv"][float(w)]])
            mark = "  <- chosen on train cv" if float(w) == fit10["weight"] else ""
            print(f"{f'   fused, GMM weight {w:.2f}':<62} {cv_w:>8.2%} "
                  f"{eer(*fit10['fused'](dev10, float(w)))[0]:>8.2%}{mark}")  # fmt: skip
        how = "declared" if declared else "guessed (shipped)"
        t10, i10 = fit10["fused"](dev10, fit10["weight"])
        cv10 = np.mean([e for e, _ in fit10["cv"][fit10["weight"]]])
        print(
            f"{f'10 group-matched S-norm, group {how}':<62} {cv10:>8.2%} {eer(t10, i10)[0]:>8.2%}"
        )
    if args.write_cohort:
        from duetto.safety import cohort as C

        shipped_cohort, _, _ = make_cohort(train)
        keys = ("res_mean", "res_std", "gmm_mean", "gmm_std", "weight")
        shipped_cohort = C.Cohort(*[getattr(shipped_cohort, f) for f in
                                    ("res", "gmm", "groups", "relevance", "ubm", "classifier")],
                                  *[fit10[k] for k in keys], round(fit10["threshold"], 3))  # fmt: skip
        out = ROOT / "src" / "duetto" / "safety" / "cohort.npz"
        C.save(out, shipped_cohort)
        print(
            f"wrote {out} ({len(shipped_cohort.groups)} train speakers, fusion fitted on train cv)"
        )
    th10 = fit10["threshold"]
    print(
        f"step 10 threshold (train cv equal-error point) {th10:.3f}: on dev false rejections "
        f"{np.mean(t10 < th10):.2%}, false acceptances {np.mean(i10 >= th10):.2%}"
    )
    if args.write_ubm:
        from duetto.safety import gmm_ubm

        out = ROOT / "src" / "duetto" / "safety" / "ubm.npz"
        backend = gmm_ubm.Backend(fit_ubm(train), RELEVANCE, fusion["res_mean"],
                                  fusion["res_std"], fusion["gmm_mean"], fusion["gmm_std"],
                                  fusion["weight"], round(fusion["threshold"], 3))  # fmt: skip
        gmm_ubm.save_backend(out, backend)
        print(f"wrote {out} (UBM of {len(train)} train utterances, fusion fitted on train cv)")
    from duetto.safety.gmm_ubm import load_backend
    from duetto.safety.voiceprint import THRESHOLD

    shipped = load_backend()
    if shipped is not None:
        th = shipped.threshold
        print(f"\nstep 9 threshold, equal-error point of the train cross-validation: "
              f"{fusion['threshold']:.3f} (shipped: {th})")  # fmt: skip
        print(f"dev at the shipped fused threshold {th}: false rejections {np.mean(tf < th):.2%}, "
              f"false acceptances {np.mean(i_f >= th):.2%}")  # fmt: skip
    print(f"\nstep 6 threshold, equal-error point of the train cross-validation: {threshold:.3f} "
          f"(shipped: {THRESHOLD})")  # fmt: skip
    print(f"dev at the shipped threshold {THRESHOLD}: false rejections {np.mean(t < THRESHOLD):.2%}, "
          f"false acceptances {np.mean(i >= THRESHOLD):.2%}")  # fmt: skip


if __name__ == "__main__":
    main()
