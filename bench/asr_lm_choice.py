"""Choosing among noisy decodings with a language model (issue 6, a measurement).

Needs the word filter's prepared audio (``bench/word_filter.py prepare --set held`` and
``--set fit``). Each step, in the order docs/robustness.md reports them:

    R=".venv/bin/python bench/asr_lm_choice.py"
    $R decode                 # held: each speed's filtered transcript and its beam's 5 best
    $R score                  # the grid of λ × β × pool on held, and the rule's cell
    $R engine                 # the engine's asr.noisy_lm on held against score's pick
    $R decode --set fit --conditions "babble 3;babble 5;babble 7;babble 10"
    $R rank                   # the learned choice: trained on fit, read on held
    $R unfiltered             # pool B': the transcripts before the word filter as candidates
    $R thresholds             # the word filter at 0.5, 0.4 and 0.3 under Gemma's choice
    $R cost --clips 40        # seconds a noisy clip, side by side
    $R larger                 # nine speeds, or beam 10's ten best, under Gemma's choice
    $R acoustic               # each candidate's teacher-forced acoustic score added
    $R ensemble               # a second model's decodings as voters and candidates
    $R ensemble --second base # the same with the self-distilled Whisper base
    $R vote                   # the two models' ten-way medoid on the fit set
    $R vote-dev               # the same on the whole dev set (mixed as duetto eval asr)

Decodings use the noisy-room settings (``bundled-robust``, the learned word filter at 0.5, beam
5 under 20 dB) at the five speeds of ``asr.noisy_speeds``, cached under the word filter's cache
folder, as are Gemma's log-probabilities of the candidates (``rank`` and later steps).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import word_filter as W  # noqa: E402

SPEEDS = (1.0, 0.95, 1.05, 0.9, 1.1)
NBEST = 5
LAMBDAS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
BETAS = (0.0, 0.5, 1.0, 2.0)


def rows_of(name: str, conditions: tuple[str, ...] = ("babble 5",)) -> list[dict]:
    """The word filter's prepared set ``name`` (held or fit) in ``conditions``."""
    return [r for r in W._read(W._index(name)) if r["condition"] in conditions]


def audio_of(name: str, r: dict) -> np.ndarray:
    return np.load(W._clip(name, r["id"], r["condition"])).astype(np.float32)


def cache_of(name: str) -> Path:
    return W.CACHE / f"lm-choice-{name}.pkl"


def decode(
    name: str,
    conditions: tuple[str, ...],
    threads: int,
    threshold: float = 0.5,
    speeds: tuple[float, ...] = SPEEDS,
    beam: int = 5,
    tag: str | None = None,
    model: str = "bundled-robust",
) -> int:
    """Per clip and speed: the filtered transcript and the beam's five best (text, mean token
    log-probability), unfiltered, the first being the transcript before filtering."""
    path = cache_of(tag or (name if threshold == 0.5 else f"{name}-t{threshold:g}"))
    done = pickle.loads(path.read_bytes()) if path.exists() else {}
    rows = [r for r in rows_of(name, conditions) if (r["id"], r["condition"]) not in done]
    clips = (((r["id"], r["condition"]), audio_of(name, r)) for r in rows)
    return decode_clips(clips, len(rows), path, threads, threshold, speeds, beam, model)


def decode_clips(clips, count: int, path: Path, threads: int, threshold: float = 0.5,
                 speeds: tuple[float, ...] = SPEEDS, beam: int = 5,
                 model: str = "bundled-robust") -> int:  # fmt: skip
    """``decode`` over ``(key, audio)`` pairs, kept in ``path`` by key (resumable)."""
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings
    from duetto.data.augment import speed_perturb

    asr = WhisperASR(ASRSettings(model=model, word_filter="learned",
                                 word_filter_threshold=threshold, filter_below_snr_db=20.0,
                                 noisy_beam_size=beam, threads=threads))  # fmt: skip
    done = pickle.loads(path.read_bytes()) if path.exists() else {}
    for n, (key, audio) in enumerate(clips):
        if key in done:
            continue
        per_speed = []
        for s in speeds:
            clip = audio if s == 1.0 else speed_perturb(audio, s)
            out = asr.transcribe(clip, nbest=max(NBEST, beam))
            per_speed.append((out.text, list(out.alternatives)))
        done[key] = per_speed
        if n % 20 == 19 or n == count - 1:
            path.write_bytes(pickle.dumps(done))
            print(f"  {n + 1}/{count}", flush=True)
    path.write_bytes(pickle.dumps(done))
    return 0


def candidates(per_speed, unfiltered: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(pool B's candidates, the speed decodings): the engine's (``lm_candidates``); with
    ``unfiltered`` (each speed's transcript before the word filter), pool B': those too, before
    the beams' other hypotheses."""
    from duetto.asr.whisper import lm_candidates

    a = [best for best, _ in per_speed]
    pool = [t for t, _ in lm_candidates(a, [alts for _, alts in per_speed])]
    extra = [*(unfiltered or ()), *pool[len(a) :]]
    return a + [t for k, t in enumerate(extra) if t not in a and t not in extra[:k]], a


def gemma_logprobs(texts) -> dict:
    """Gemma's sentence log-probability of each text, kept in a cache shared by the steps."""
    from duetto.llm.scoring import GemmaScorer

    path = W.CACHE / "lm-choice-logprobs.pkl"
    lp = pickle.loads(path.read_bytes()) if path.exists() else {}
    new = sorted(set(texts) - lp.keys())
    if new:
        print(f"Gemma: {len(new)} new candidates", flush=True)
        lp.update(zip(new, GemmaScorer().sentence_logprobs(new), strict=True))
        path.write_bytes(pickle.dumps(lp))
    return lp


def held_wer(
    rows: list[dict], pool, lam: float = 0.5, beta: float = 0.5, extra=None, gamma: float = 0.0
) -> float:
    """WER of the choice at (λ, β) over ``pool`` (each row's candidates and decodings); with
    ``extra`` (a score per candidate of each row), ``gamma`` times it added to the cost's
    log-probability side."""
    from duetto.asr.whisper import lm_pick
    from duetto.data.textnorm import normalize_text, word_errors

    lp = gemma_logprobs(t for cands, _ in pool for t in cands)
    errors = words = 0
    for k, (r, (cands, heard)) in enumerate(zip(rows, pool, strict=True)):
        scores = [lp[c] for c in cands]
        if extra is not None:
            scores = [s + gamma / lam * x for s, x in zip(scores, extra[k], strict=True)]
        pick = cands[lm_pick(cands, heard, scores, lam, beta)]
        e, n = word_errors(normalize_text(r["ref"]), normalize_text(pick))
        errors, words = errors + e, words + n
    return 100 * errors / words


def choose(cands: list[str], decodings: list[str], lp: dict, lam: float, beta: float) -> int:
    from duetto.asr.whisper import lm_pick

    return lm_pick(cands, decodings, [lp[c] for c in cands], lam, beta)


def engine(threads: int) -> int:
    """The engine's own choice (asr.noisy_lm at its default weights) on the held clips: its WER,
    and how often its transcript is the one ``score``'s pick of the same cell gives."""
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings
    from duetto.data.textnorm import normalize_text, word_errors
    from duetto.llm.scoring import GemmaScorer

    settings = ASRSettings(model="bundled-robust", word_filter="learned",
                           word_filter_threshold=0.5, filter_below_snr_db=20.0,
                           noisy_beam_size=5, noisy_speeds=SPEEDS[1:], noisy_lm="bundled",
                           threads=threads)  # fmt: skip
    asr = WhisperASR(settings)
    done = pickle.loads(cache_of("held").read_bytes())
    rows = rows_of("held")
    scorer = GemmaScorer()
    counts, same, seconds = [], 0, []
    for r in rows:
        out = asr.transcribe(audio_of("held", r))
        seconds.append(out.seconds / out.duration)
        cands, a = candidates(done[r["id"], r["condition"]])
        lp = dict(zip(cands, scorer.sentence_logprobs(cands), strict=True))
        pick = cands[choose(cands, a, lp, settings.noisy_lm_weight, settings.noisy_lm_word_bonus)]
        same += out.text == pick
        counts.append(word_errors(normalize_text(r["ref"]), normalize_text(out.text)))
    counts = np.array(counts)
    print(f"engine (asr.noisy_lm): held babble 5 dB {100 * counts[:, 0].sum() / counts[:, 1].sum():.1f}%, "
          f"{same}/{len(rows)} transcripts as score's pick, median RTF {np.median(seconds):.3f}")  # fmt: skip
    return 0


def score() -> int:
    from duetto.data.textnorm import normalize_text, word_errors
    from duetto.llm.scoring import GemmaScorer

    done = pickle.loads(cache_of("held").read_bytes())
    rows = [r for r in rows_of("held") if (r["id"], r["condition"]) in done]
    print(f"held set, babble 5 dB: {len(rows)} utterances decoded")
    scorer = GemmaScorer()
    texts = {t for r in rows for t in candidates(done[r["id"], r["condition"]])[0]}
    texts = sorted(texts)
    lp = dict(zip(texts, scorer.sentence_logprobs(texts), strict=True))
    refs = [normalize_text(r["ref"]) for r in rows]

    def wer(picks: list[str]) -> float:
        counts = np.array(
            [word_errors(ref, normalize_text(p)) for ref, p in zip(refs, picks, strict=True)]
        )
        return 100 * counts[:, 0].sum() / counts[:, 1].sum()

    pools = {}
    for r in rows:
        b, a = candidates(done[r["id"], r["condition"]])
        pools.setdefault("A", []).append((a, a))
        pools.setdefault("B", []).append((b, a))
    print(f"speed 1.0 alone {wer([p[0][0] for p in pools['A']]):.1f}")
    for name, pool in pools.items():
        oracle = [min(c, key=lambda t, ref=ref: word_errors(ref, normalize_text(t))[0])
                  for (c, _), ref in zip(pool, refs, strict=True)]  # fmt: skip
        print(f"pool {name}: {np.mean([len(c) for c, _ in pool]):.1f} candidates, "
              f"oracle {wer(oracle):.1f}")  # fmt: skip
    grid = {}
    for name in ("A", "B"):
        print(f"pool {name}: rows λ, columns β {BETAS}")
        for lam in LAMBDAS:
            line = []
            for beta in BETAS:
                picks = [c[choose(c, d, lp, lam, beta)] for c, d in pools[name]]
                grid[lam, beta, name] = wer(picks)
                line.append(f"{grid[lam, beta, name]:6.1f}")
            print(f"  λ {lam:<5}" + "".join(line), flush=True)
    best = min(grid, key=lambda k: (grid[k], k[0], k[1], k[2]))
    print(f"medoid (λ 0, β 0, pool A) {grid[0.0, 0.0, 'A']:.1f}; the rule's cell: "
          f"λ {best[0]}, β {best[1]}, pool {best[2]}: {grid[best]:.1f}")  # fmt: skip
    return 0


FEATURES = ("edits", "logprob", "logprob per word", "words", "votes", "beams listing",
            "beam log-prob", "unlisted", "a speed decoding", "speed 1.0")  # fmt: skip
RIDGE = 0.01


def features(per_speed, logprob: dict) -> tuple[list[str], np.ndarray]:
    """Pool B's candidates of one clip and their FEATURES (docs/robustness.md)."""
    from duetto.data.textnorm import normalize_text, word_errors

    cands, heard = candidates(per_speed)
    heard_norm = [normalize_text(t) for t in heard]
    lists = [{normalize_text(t): score for t, score in alts} for _, alts in per_speed]
    rows = []
    for c in cands:
        words = normalize_text(c)
        n = len(words.split())
        listed = [lst[words] for lst in lists if words in lst]
        rows.append([
            sum(word_errors(words, h)[0] for h in heard_norm),
            logprob[c],
            logprob[c] / (n + 1),
            n,
            sum(words == h for h in heard_norm),
            len(listed),
            max(listed) if listed else 0.0,
            float(not listed),
            float(c in heard),
            float(c == heard[0]),
        ])  # fmt: skip
    return cands, np.array(rows, np.float64)


def train_ranker(
    groups: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights of a linear score whose softmax over each clip's candidates has the least expected
    word errors (``groups``: each clip's feature rows and word errors), ridge RIDGE on
    standardized features; started from the hand-weighted cost (λ 0.5, β 0.5)."""
    from scipy.optimize import minimize

    stacked = np.vstack([x for x, _ in groups])
    mean, std = stacked.mean(0), stacked.std(0) + 1e-9
    xs = [((x - mean) / std, e) for x, e in groups]
    start = np.zeros(len(FEATURES))
    start[FEATURES.index("edits")] = -1.0 * std[0]
    start[FEATURES.index("logprob")] = 0.5 * std[1]
    start[FEATURES.index("words")] = 0.5 * std[3]

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for x, e in xs:
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            risk = p @ e
            total += risk
            grad += x.T @ (p * (e - risk))
        n = len(xs)
        return total / n + RIDGE * w @ w, grad / n + 2 * RIDGE * w

    w = minimize(loss, start, jac=True, method="L-BFGS-B").x
    return w, mean, std


def rank() -> int:
    from duetto.data.textnorm import normalize_text, word_errors

    sets = {}
    for name in ("fit", "held"):
        done = pickle.loads(cache_of(name).read_bytes())
        conditions = (
            ("babble 3", "babble 5", "babble 7", "babble 10") if name == "fit" else ("babble 5",)
        )
        rows = [r for r in rows_of(name, conditions) if (r["id"], r["condition"]) in done]
        sets[name] = [(r, done[r["id"], r["condition"]]) for r in rows]
        print(f"{name}: {len(rows)} clips", flush=True)
    lp = gemma_logprobs(t for clips in sets.values() for _, ps in clips for t in candidates(ps)[0])
    groups = {}
    for name, clips in sets.items():
        groups[name] = []
        for r, ps in clips:
            cands, x = features(ps, lp)
            ref = normalize_text(r["ref"])
            errors = np.array([word_errors(ref, normalize_text(c))[0] for c in cands], np.float64)
            groups[name].append((x, errors, len(ref.split())))
    w, mean, std = train_ranker([(x, e) for x, e, _ in groups["fit"]])
    print("weights (standardized features):")
    for f, v in zip(FEATURES, w, strict=True):
        print(f"  {f:<18} {v:+.3f}")

    def wer(name, pick, condition=None) -> float:
        errs = refs = 0
        for (r, _), (x, e, n) in zip(sets[name], groups[name], strict=True):
            if condition is None or r["condition"] == condition:
                errs += e[pick(x)]
                refs += n
        return 100 * errs / refs

    hand = lambda x: int(np.argmin(x[:, 0] - 0.5 * x[:, 1] - 0.5 * x[:, 3]))  # noqa: E731
    learned = lambda x: int(np.argmax(((x - mean) / std) @ w))  # noqa: E731
    for condition in ("babble 3", "babble 5", "babble 7", "babble 10"):
        print(f"fit {condition}: hand-weighted {wer('fit', hand, condition):.1f}, "
              f"learned {wer('fit', learned, condition):.1f}")  # fmt: skip
    print(
        f"held babble 5 dB: hand-weighted {wer('held', hand):.1f}, learned {wer('held', learned):.1f}"
    )
    np.savez(W.CACHE / "lm-choice-ranker.npz", weights=w, mean=mean, std=std,
             features=np.array(FEATURES))  # fmt: skip
    return 0


def pool_b_prime(threads: int) -> int:
    """Pool B' on held at the hand weights (λ 0.5, β 0.5), beside pool B. The word filter
    replaces a beam's best by its filtered text, so the transcripts before it are decoded
    again without the filter (the same beam search) into their own cache."""
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings
    from duetto.data.augment import speed_perturb

    done = pickle.loads(cache_of("held").read_bytes())
    rows = rows_of("held")
    path = cache_of("held-unfiltered")
    raw = pickle.loads(path.read_bytes()) if path.exists() else {}
    if len(raw) < len(rows):
        asr = WhisperASR(ASRSettings(model="bundled-robust", filter_below_snr_db=20.0,
                                     noisy_beam_size=5, threads=threads))  # fmt: skip
        for r in rows:
            audio = audio_of("held", r)
            raw[r["id"], r["condition"]] = [
                asr.transcribe(audio if s == 1.0 else speed_perturb(audio, s)).text for s in SPEEDS
            ]
        path.write_bytes(pickle.dumps(raw))
    pools = {
        "B": [candidates(done[r["id"], r["condition"]]) for r in rows],
        "B'": [candidates(done[r["id"], r["condition"]], raw[r["id"], r["condition"]])
               for r in rows],
    }  # fmt: skip
    for name, pool in pools.items():
        size = np.mean([len(c) for c, _ in pool])
        print(f"pool {name}: {size:.1f} candidates, held babble 5 dB {held_wer(rows, pool):.1f}%")
    return 0


def thresholds(threads: int) -> int:
    """Pool B on held at the hand weights with the word filter at 0.5, 0.4 and 0.3."""
    rows = rows_of("held")
    for t in (0.5, 0.4, 0.3):
        if t != 0.5:
            decode("held", ("babble 5",), threads, threshold=t)
        done = pickle.loads(cache_of("held" if t == 0.5 else f"held-t{t:g}").read_bytes())
        pool = [candidates(done[r["id"], r["condition"]]) for r in rows]
        print(f"filter threshold {t}: held babble 5 dB {held_wer(rows, pool):.1f}%", flush=True)
    return 0


NINE = tuple(round(0.9 + 0.025 * k, 3) for k in range(9))


def larger(threads: int) -> int:
    """Pool B on held at the hand weights from nine speeds, and from beam 10's ten best."""
    rows = rows_of("held")
    five = pickle.loads(cache_of("held").read_bytes())
    order = (1.0, *(s for s in NINE if s != 1.0))  # speed 1.0 first, as the engine decodes
    extra = tuple(s for s in order if s not in SPEEDS)
    decode("held", ("babble 5",), threads, speeds=extra, tag="held-4more")
    decode("held", ("babble 5",), threads, beam=10, tag="held-beam10")
    more = pickle.loads(cache_of("held-4more").read_bytes())
    beam10 = pickle.loads(cache_of("held-beam10").read_bytes())
    pools = {"five speeds, beam 5 (pool B)": [], "nine speeds": [], "beam 10": []}
    for r in rows:
        key = r["id"], r["condition"]
        by_speed = dict(zip(SPEEDS, five[key], strict=True)) | dict(
            zip(extra, more[key], strict=True)
        )
        pools["five speeds, beam 5 (pool B)"].append(candidates(five[key]))
        pools["nine speeds"].append(candidates([by_speed[s] for s in order]))
        pools["beam 10"].append(candidates(beam10[key]))
    for name, pool in pools.items():
        size = np.mean([len(c) for c, _ in pool])
        print(f"{name}: {size:.1f} candidates, held babble 5 dB {held_wer(rows, pool):.1f}%")
    return 0


GAMMAS = (0.25, 0.5, 1.0)


def acoustic_scores(asr, audio: np.ndarray, texts: list[str]) -> list[float]:
    """Each text's summed token log-probability under ``asr``'s model, teacher-forced on
    ``audio`` as recorded (the trimmed window's encoder output, as the engine decodes it)."""
    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer

    from duetto.asr.whisper import FULL_WINDOW_FRAMES, MIN_WINDOW_S, TRIM_PAD

    pad = max(TRIM_PAD, int(MIN_WINDOW_S * 16000) - len(audio))
    features = asr.model.feature_extractor(np.concatenate([audio, np.zeros(pad, np.float32)]))
    frames = min(features.shape[-1] // 2 * 2, FULL_WINDOW_FRAMES)
    view = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None, :, :frames]))
    encoded = np.array(asr.model.model.encode(view, to_cpu=True))
    tokenizer = Tokenizer(asr.model.hf_tokenizer, False, task="transcribe", language="en")
    tokens = [tokenizer.encode(" " + t.strip()) if t.strip() else [] for t in texts]
    scored = [k for k, t in enumerate(tokens) if t]
    out = [0.0] * len(texts)
    if scored:
        batch = np.ascontiguousarray(np.repeat(encoded, len(scored), 0))
        start = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        results = asr.model.model.align(ctranslate2.StorageView.from_array(batch), start,
                                        [tokens[k] for k in scored], len(audio) // 160)  # fmt: skip
        for k, result in zip(scored, results, strict=True):
            out[k] = float(np.log(np.maximum(result.text_token_probs, 1e-10)).sum())
    return out


def acoustic(threads: int) -> int:
    """Gemma's choice with each candidate's teacher-forced acoustic score added (γ · AM)."""
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings

    asr = WhisperASR(ASRSettings(model="bundled-robust", threads=threads))
    rows = rows_of("held")
    done = pickle.loads(cache_of("held").read_bytes())
    pool = [candidates(done[r["id"], r["condition"]]) for r in rows]
    am = [
        acoustic_scores(asr, audio_of("held", r), cands)
        for r, (cands, _) in zip(rows, pool, strict=True)
    ]
    print(f"pool B, λ 0.5, β 0.5, γ 0: held babble 5 dB {held_wer(rows, pool):.1f}%")
    for gamma in GAMMAS:
        wer = held_wer(rows, pool, extra=am, gamma=gamma)
        print(f"  γ {gamma}: held babble 5 dB {wer:.1f}%", flush=True)
    return 0


def cost(threads: int, clips: int) -> int:
    """Seconds per noisy clip, side by side on the same held clips (the three engines take
    turns clip by clip): the noisy-room settings, + 5 speeds (medoid), + Gemma's choice; and
    Gemma's share of the last."""
    import statistics
    import time

    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings

    base = dict(model="bundled-robust", word_filter="learned", word_filter_threshold=0.5,
                filter_below_snr_db=20.0, noisy_beam_size=5, threads=threads)  # fmt: skip
    engines = {
        "noisy-room settings": WhisperASR(ASRSettings(**base)),
        "+ 5 speeds (medoid)": WhisperASR(ASRSettings(**base, noisy_speeds=SPEEDS[1:])),
        "+ Gemma's choice": WhisperASR(
            ASRSettings(**base, noisy_speeds=SPEEDS[1:], noisy_lm="bundled")
        ),
    }
    lm = engines["+ Gemma's choice"].noisy_lm
    scoring, score = [], lm.sentence_logprobs

    def timed(texts):
        started = time.perf_counter()
        out = score(texts)
        scoring.append(time.perf_counter() - started)
        return out

    lm.sentence_logprobs = timed
    seconds = {name: [] for name in engines}
    audio_s = []
    for r in rows_of("held")[:clips]:
        audio = audio_of("held", r)
        audio_s.append(len(audio) / 16000)
        for name, asr in engines.items():
            started = time.perf_counter()
            asr.transcribe(audio)
            seconds[name].append(time.perf_counter() - started)
    first = statistics.median(seconds["noisy-room settings"])
    print(f"{clips} held babble 5 dB clips, median {statistics.median(audio_s):.2f} s of audio, "
          f"{threads} threads; median seconds a clip:")  # fmt: skip
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"  {name:<22} {median:.3f} s  ({median / first:.2f}x)")
    print(f"  of which Gemma        {statistics.median(scoring):.3f} s")
    return 0


SECOND = {  # a second model for ensemble: bench/asr_distill.py's run and step
    "sdstate": ("sdstate", 120, False),  # tiny.en, encoder-state distillation
    "base": ("sdbase", 120, True),  # Whisper base, self-distilled (asr_distill.py --base)
    "base360": ("sdbase360", 240, True),  # the same, a 360-step run (its held-out pick)
}


def second_model(second: str) -> tuple[str, str]:
    """(run name, merged model folder) of ``SECOND[second]``, Whisper base's bench set up
    where the run is a base's."""
    import asr_distill as D
    import asr_finetune as F

    run, step, base = SECOND[second]
    if base:
        D.use_base()
    return run, str(F.model_folder(run, step))


def ensemble(threads: int, second: str) -> int:
    """Pool B on held at the hand weights with a second model's decodings (``SECOND``) added
    as voters and candidates: at speed 1.0 only, or at all five speeds. The edits are scaled
    to five voters."""
    rows = rows_of("held")
    run, folder = second_model(second)
    tag = f"held-{run}"
    decode("held", ("babble 5",), threads, tag=tag, model=folder)
    five = pickle.loads(cache_of("held").read_bytes())
    other = pickle.loads(cache_of(tag).read_bytes())
    for name, take in (("+ one decoding", 1), ("+ five decodings", 5)):
        pool = []
        for r in rows:
            key = r["id"], r["condition"]
            cands, heard = candidates([*five[key], *other[key][:take]])
            pool.append((cands, heard))
        voters = len(SPEEDS) + take
        wer = held_wer(rows, pool, lam=0.5 * voters / 5, beta=0.5 * voters / 5)
        size = np.mean([len(c) for c, _ in pool])
        print(f"{name}: {voters} voters, {size:.1f} candidates, held babble 5 dB {wer:.1f}%")
    return 0


def report_votes(label: str, refs: dict, tiny: dict, base: dict) -> None:
    """WER of ``bundled-robust`` at speed 1.0 and of the medoids (its five decodings, the
    base's five, all ten) over ``refs`` (key: reference), from the two decode caches."""
    from duetto.data.textnorm import wer

    def picked(pick) -> float:
        keys = list(refs)
        return 100 * wer([refs[k] for k in keys], [pick(k) for k in keys])

    def vote(*caches) -> callable:
        def pick(key) -> str:
            return _medoid_text([best for done in caches for best, _ in done[key]])

        return pick

    print(f"{label}, babble 5 dB, {len(refs)} clips")
    print(f"  bundled-robust at speed 1.0: {picked(lambda k: tiny[k][0][0]):.1f}%")
    print(f"  bundled-robust, five-way medoid: {picked(vote(tiny)):.1f}%")
    print(f"  the base alone, five-way medoid: {picked(vote(base)):.1f}%")
    print(f"  both, ten-way medoid: {picked(vote(tiny, base)):.1f}%")


def vote(threads: int, second: str = "base") -> int:
    """On the fit set in babble at 5 dB: ``bundled-robust``'s five-way medoid against the
    medoid of its five and a self-distilled base's five decodings (``SECOND[second]``)."""
    rows = rows_of("fit", ("babble 5",))
    run, folder = second_model(second)
    tag = f"fit-{run}"
    decode("fit", ("babble 5",), threads, tag=tag, model=folder)
    refs = {(r["id"], r["condition"]): r["ref"] for r in rows}
    tiny = pickle.loads(cache_of("fit").read_bytes())
    report_votes("fit", refs, tiny, pickle.loads(cache_of(tag).read_bytes()))
    return 0


DEV = ROOT.parent / "shared" / "data" / "speechocean762"


def dev_refs() -> dict:
    """(id, "babble 5") -> reference of every dev utterance, in the manifest's order."""
    from duetto.data.manifest import read_manifest

    return {(u.id, "babble 5"): u.text for u in read_manifest(DEV / "dev.jsonl")}


def dev_babble(skip=frozenset()):
    """(key, audio) of every dev utterance in babble at 5 dB whose key is not in ``skip``,
    mixed exactly as ``duetto eval asr`` mixes it (seed 0, the same babble of train.jsonl)."""
    from duetto.audio import load_audio
    from duetto.data.manifest import read_manifest
    from duetto.data.noise import mix_at_snr, noise_source, stable_rng

    babble = noise_source("babble", DEV / "train.jsonl")
    for u in read_manifest(DEV / "dev.jsonl"):
        if (u.id, "babble 5") in skip:
            continue
        clean = load_audio(u.audio)
        noise = babble.noise(
            len(clean), stable_rng(0, u.id, "babble", 5.0), exclude_speaker=u.speaker
        )
        yield (u.id, "babble 5"), mix_at_snr(clean, noise, 5.0).audio


def decode_dev(path: Path, threads: int, model: str = "bundled-robust") -> dict:
    """``decode_clips`` over the whole dev in babble at 5 dB, mixing only the clips not yet
    in ``path``; the cache read back."""
    done = pickle.loads(path.read_bytes()) if path.exists() else {}
    todo = len(dev_refs().keys() - done.keys())
    decode_clips(dev_babble(skip=done.keys()), todo, path, threads, model=model)
    return pickle.loads(path.read_bytes())


def vote_dev(threads: int, second: str = "base") -> int:
    """The whole dev set in babble at 5 dB: ``bundled-robust``'s five-way medoid (the engine's
    ``noisy_speeds``) against the ten-way medoid with the self-distilled base's five."""
    tiny = decode_dev(cache_of("dev-all"), threads)
    run, folder = second_model(second)
    base = decode_dev(cache_of(f"dev-all-{run}"), threads, model=folder)
    report_votes("dev", dev_refs(), tiny, base)
    return 0


def _align(pivot: list[str], other: list[str]) -> list[tuple[int | None, int | None]]:
    """Word alignment of ``other`` to ``pivot`` (Levenshtein, unit costs), as (pivot index,
    other index) pairs, None on the side that has no word; on equal cost a substitution is
    preferred over a deletion plus an insertion."""
    n, m = len(pivot), len(other)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j - 1] + (pivot[i - 1] != other[j - 1]),
                          d[i - 1, j] + 1, d[i, j - 1] + 1)  # fmt: skip
    pairs, i, j = [], n, m
    while i or j:
        if i and j and d[i, j] == d[i - 1, j - 1] + (pivot[i - 1] != other[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def word_vote(texts: list[str]) -> str:
    """ROVER-style word vote over ``texts`` (decodings of one clip): the medoid is the pivot,
    each text aligned to it by normalized words; at each pivot word the most votes (a word or
    nothing) win, the pivot's on a tie; in each gap a word is written only if more than half
    the texts put it there. Surface forms are kept (the first voter's for a word it won)."""
    from duetto.asr.whisper import medoid
    from duetto.data.textnorm import normalize_text

    def tokens(text: str) -> list[tuple[str, str]]:
        return [(t, k) for t in text.split() if (k := normalize_text(t))]

    toks = [tokens(t) for t in texts]
    p = medoid(texts)
    pivot = toks[p]
    keys = [k for _, k in pivot]
    slots: list[dict] = [{} for _ in pivot]  # key -> [votes, surface]; "" for nothing
    gaps: list[dict] = [{} for _ in range(len(pivot) + 1)]
    order = [p, *(k for k in range(len(texts)) if k != p)]
    for k in order:
        other = toks[k]
        gap, seen = 0, set()
        for a, b in _align(keys, [key for _, key in other]):
            if a is not None:
                gap = a + 1
                key, surface = (other[b][1], other[b][0]) if b is not None else ("", "")
                vote = slots[a].setdefault(key, [0, surface])
                vote[0] += 1
            elif (gap, other[b][1]) not in seen:
                seen.add((gap, other[b][1]))
                gaps[gap].setdefault(other[b][1], [0, other[b][0]])[0] += 1
    out = []
    for g in range(len(pivot) + 1):
        out += [s for v, s in gaps[g].values() if v > len(texts) / 2]
        if g < len(pivot):
            best = max(slots[g].values(), key=lambda v: v[0])
            own = slots[g][keys[g]]
            winner = own if own[0] == best[0] else best
            if winner[1]:
                out.append(winner[1])
    return " ".join(out)


def weighted_medoid(texts: list[str], weights: list[float]) -> str:
    """The text with the least weighted sum of word edits to the others."""
    from duetto.data.textnorm import normalize_text, word_errors

    norm = [normalize_text(t) for t in texts]
    costs = [sum(w * word_errors(a, b)[0] for b, w in zip(norm, weights, strict=True))
             for a in norm]  # fmt: skip
    return texts[int(np.argmin(costs))]


def _medoid_text(texts: list[str]) -> str:
    from duetto.asr.whisper import medoid

    return texts[medoid(texts)]


COMBINERS = {  # combine and combine-dev: how one clip's decodings become its transcript
    "medoid": _medoid_text,
    "word-vote": word_vote,
    # tiny.en's five, then the base's five counted twice
    "base-weighted": lambda texts: weighted_medoid(texts, [1.0] * 5 + [2.0] * 5),
}


def combine(threads: int) -> int:
    """Lever 1 of docs/robustness.md's 2026-11-27 c: the ten-way medoid, word vote and
    base-weighted medoid on fit + held, pooled (combine-dev reads the whole dev)."""
    from duetto.data.textnorm import normalize_text, word_errors

    def errors(refs, tiny, base, pick) -> tuple[int, int]:
        e = n = 0
        for key, ref in refs.items():
            texts = [b for b, _ in tiny[key]] + ([b for b, _ in base[key]] if base else [])
            r = normalize_text(ref)
            e += word_errors(r, normalize_text(pick(texts)))[0]
            n += len(r.split())
        return e, n

    sets = {}
    for name in ("fit", "held"):
        rows = rows_of(name, ("babble 5",))
        refs = {(r["id"], r["condition"]): r["ref"] for r in rows}
        tiny = pickle.loads(cache_of(name).read_bytes())
        sets[name] = refs, tiny, pickle.loads(cache_of(f"{name}-sdbase").read_bytes())
    for voters, label in ((10, "ten decodings"), (5, "bundled-robust's five")):
        print(f"{label}: fit / held / pooled, babble 5 dB")
        for m, pick in COMBINERS.items():
            if voters == 5 and m == "base-weighted":
                continue
            got = {}
            for name, (refs, tiny, base) in sets.items():
                got[name] = errors(refs, tiny, base if voters == 10 else None, pick)
            pooled = [sum(x) for x in zip(*got.values(), strict=True)]
            cells = " / ".join(f"{100 * e / n:.2f}%" for e, n in [*got.values(), pooled])
            print(f"  {m}: {cells}  ({pooled[0]} errors in {pooled[1]} words)")
    return 0


def combine_dev(method: str) -> int:
    """The whole dev in babble at 5 dB (read once): the ten-way medoid against ``method``."""
    from duetto.data.textnorm import wer

    refs = dev_refs()
    tiny = pickle.loads(cache_of("dev-all").read_bytes())
    base = pickle.loads(cache_of("dev-all-sdbase").read_bytes())
    for m in ("medoid", method):
        hyps = [COMBINERS[m]([b for b, _ in tiny[k]] + [b for b, _ in base[k]]) for k in refs]
        print(f"dev, babble 5 dB, ten decodings, {m}: "
              f"{100 * wer(list(refs.values()), hyps):.2f}%")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "step",
        choices=(
            "decode",
            "score",
            "engine",
            "rank",
            "unfiltered",
            "thresholds",
            "cost",
            "larger",
            "acoustic",
            "ensemble",
            "vote",
            "vote-dev",
            "combine",
            "combine-dev",
        ),
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clips", type=int, default=40, help="clips for cost")
    parser.add_argument("--set", default="held", choices=("held", "fit"))
    parser.add_argument("--conditions", default="babble 5", help="';'-separated (decode)")
    parser.add_argument("--second", choices=tuple(SECOND),
                        help="(ensemble: sdstate; vote, vote-dev: base)")  # fmt: skip
    parser.add_argument(
        "--method", default="base-weighted", choices=tuple(COMBINERS), help="(combine-dev)"
    )
    args = parser.parse_args()
    steps = {
        "decode": lambda: decode(args.set, tuple(args.conditions.split(";")), args.threads),
        "score": score,
        "engine": lambda: engine(args.threads),
        "rank": rank,
        "unfiltered": lambda: pool_b_prime(args.threads),
        "thresholds": lambda: thresholds(args.threads),
        "cost": lambda: cost(args.threads, args.clips),
        "larger": lambda: larger(args.threads),
        "acoustic": lambda: acoustic(args.threads),
        "ensemble": lambda: ensemble(args.threads, args.second or "sdstate"),
        "vote": lambda: vote(args.threads, args.second or "base"),
        "vote-dev": lambda: vote_dev(args.threads, args.second or "base"),
        "combine": lambda: combine(args.threads),
        "combine-dev": lambda: combine_dev(args.method),
    }
    return steps[args.step]()


if __name__ == "__main__":
    sys.exit(main())
