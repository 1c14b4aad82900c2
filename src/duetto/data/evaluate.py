"""Robustness evaluation: ASR word error rate, real-time factor and VAD miss/false-alarm rates
for clean audio and for noise mixed at given SNRs, split by manifest metadata.

VAD reference: the speech activity the same VAD finds on the *clean* utterance (threshold 0.5).
A noisy condition's miss rate is the share of those speech windows it no longer calls speech,
its false-alarm rate the share of clean non-speech windows it calls speech. So the figures
measure what noise does to the VAD, not the VAD's absolute accuracy (no hand labels exist).

Improvements are switchable in :class:`EvalConfig`: a noise-suppression front end
(``noisereduce``, spectral gating), a VAD threshold adapted to the estimated noise floor, and the
decoder's beam size.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from duetto.asr.whisper import estimated_snr
from duetto.audio import SAMPLE_RATE, load_audio
from duetto.data.manifest import Problem, Utterance
from duetto.data.noise import check_snr, mix_at_snr, noise_source, stable_rng
from duetto.data.textnorm import normalize_text, word_errors
from duetto.errors import DuettoError

CLEAN = "clean"
DENOISERS = ("none", "noisereduce", "rnnoise")
# RNNoise (the PyPI wheel ``pyrnnoise`` ships librnnoise with its weights built in) works on
# 10 ms frames of 48 kHz audio in 16-bit scale.
RNNOISE_RATE, RNNOISE_FRAME = 48_000, 480
RNNOISE_DELAY = 960  # its output lags the input by 20 ms (measured: correlation peak)
# Silero's default decision threshold; the reference activity is taken on clean audio with it.
VAD_THRESHOLD = 0.5
# Adaptive VAD: below this estimated SNR the threshold is lowered linearly, down to the floor
# value at ADAPT_LOW_SNR dB (noise pushes Silero's speech probabilities down more than up).
ADAPT_HIGH_SNR, ADAPT_LOW_SNR = 30.0, 5.0
ADAPT_MIN_THRESHOLD = 0.2
# WER axis limit of the plots: insertion loops reach several hundred percent and would squash
# every other curve; points above it are drawn at the edge with their value written.
Y_CAP = 150.0
AGE_BANDS = ((0, 12, "child <12"), (12, 18, "teen 12-17"), (18, 200, "adult 18+"))


@dataclass(frozen=True)
class EvalConfig:
    denoise: str = "none"  # none | noisereduce | rnnoise
    adaptive_vad: bool = False
    beam_size: int = 1
    # The engine's noisy-room switches (ASRSettings, duetto.asr.whisper), measured here:
    # drop recognized words below this probability (background talkers come out as words the
    # decoder is unsure of; 0 keeps every word and skips word timestamps) ...
    min_word_prob: float = 0.0
    # ... re-decode at rising temperatures when the transcript is a repetition loop ...
    loop_guard: bool = False
    # ... drop words this many dB under the utterance's loud level (None: off).
    min_word_level_db: float | None = None
    # ... only on audio whose blind SNR estimate is under this many dB (None: on all audio).
    filter_below_snr_db: float | None = None
    # ... and the learned word filter: "learned" (shipped) or an npz path (None: off), at its
    # own threshold or this one.
    word_filter: str | None = None
    word_filter_threshold: float | None = None
    # ... and decode audio under filter_below_snr_db with this beam (None: beam_size always).
    noisy_beam_size: int | None = None
    # ... and decode it again at these speeds, keeping the medoid (None: once).
    noisy_speeds: tuple[float, ...] | None = None
    # ... and choose among those decodings with this language model (asr.noisy_lm; None: medoid).
    noisy_lm: str | None = None
    # ... and decode them with this second model too, the medoid over both (None: one model).
    noisy_second_model: str | None = None
    model: str = "bundled"  # the ASR model (asr.model)

    def __post_init__(self):
        if self.denoise not in DENOISERS:
            raise DuettoError(
                f"unknown denoiser '{self.denoise}'", f"use one of: {', '.join(DENOISERS)}"
            )
        if not 1 <= self.beam_size <= 10:
            raise DuettoError(f"beam size {self.beam_size} is outside 1..10")
        if not 0.0 <= self.min_word_prob < 1.0:
            raise DuettoError(f"minimum word probability {self.min_word_prob} is outside 0..1")

    @property
    def label(self) -> str:
        parts = [f"denoise={self.denoise}"] if self.denoise != "none" else []
        parts += ["adaptive-vad"] if self.adaptive_vad else []
        parts += [f"beam={self.beam_size}"] if self.beam_size != 1 else []
        parts += [f"min-word-prob={self.min_word_prob:g}"] if self.min_word_prob else []
        parts += ["loop-guard"] if self.loop_guard else []
        if self.min_word_level_db is not None:
            parts += [f"min-word-level={self.min_word_level_db:g}dB"]
        if self.filter_below_snr_db is not None:
            parts += [f"filter-below-snr={self.filter_below_snr_db:g}dB"]
        if self.word_filter is not None:
            parts += [f"word-filter={self.word_filter}"]
        if self.word_filter_threshold is not None:
            parts += [f"word-filter-threshold={self.word_filter_threshold:g}"]
        if self.noisy_beam_size is not None:
            parts += [f"noisy-beam={self.noisy_beam_size}"]
        if self.noisy_speeds:
            parts += ["noisy-speeds=" + "/".join(f"{s:g}" for s in self.noisy_speeds)]
        parts += [f"noisy-lm={self.noisy_lm}"] if self.noisy_lm else []
        if self.noisy_second_model:
            parts += [f"noisy-second-model={self.noisy_second_model}"]
        parts += [f"model={self.model}"] if self.model != "bundled" else []
        return ",".join(parts) or "baseline"


@dataclass(frozen=True)
class Condition:
    noise: str  # "clean" or a noise name
    snr: float | None

    @property
    def label(self) -> str:
        return CLEAN if self.noise == CLEAN else f"{self.noise} {self.snr:g} dB"


@dataclass(frozen=True)
class UttResult:
    id: str
    speaker: str
    age: int | None
    gender: str
    condition: Condition
    ref: str
    hyp: str
    errors: int
    words: int
    seconds: float
    duration: float
    speech_windows: int
    missed_windows: int
    silence_windows: int
    false_alarm_windows: int
    vad_threshold: float
    word_probs: tuple[tuple[str, float], ...] = ()  # recognized words and their probabilities

    def to_dict(self) -> dict:
        d = asdict(self)
        d["condition"] = self.condition.label
        return d


def parse_conditions(snrs: str, noises: str) -> list[Condition]:
    """``"clean,20,10"`` x ``"babble,white"`` -> clean once, then every noise at every SNR."""
    out: list[Condition] = []
    names = [n.strip() for n in noises.split(",") if n.strip()]
    for item in (s.strip() for s in snrs.split(",") if s.strip()):
        if item == CLEAN:
            out.append(Condition(CLEAN, None))
            continue
        try:
            snr = check_snr(float(item))
        except ValueError:
            raise DuettoError(
                f"SNR '{item}' is not a number", "write e.g. --snr clean,20,10,5,0"
            ) from None
        if not names:
            raise DuettoError("an SNR needs a noise", "pass --noise babble,white")
        out += [Condition(n, snr) for n in names]
    if not out:
        raise DuettoError("no conditions to evaluate", "pass e.g. --snr clean,20,10,5,0")
    return out


def denoise(audio: np.ndarray, method: str) -> np.ndarray:
    """The noise-suppression front end (``none`` returns the audio unchanged)."""
    if method == "none":
        return audio
    if method == "rnnoise":
        return rnnoise(audio)
    try:
        import noisereduce
    except ImportError:
        from duetto.errors import MissingExtraError

        raise MissingExtraError("noise suppression", "data") from None
    # Non-stationary spectral gating: babble changes too fast for one global noise profile.
    out = noisereduce.reduce_noise(y=audio, sr=SAMPLE_RATE, stationary=False, n_jobs=1)
    return np.asarray(out, np.float32)


_RNNOISE = None


def _rnnoise_library():
    """librnnoise from the ``pyrnnoise`` wheel, loaded directly (the package's own import pulls
    in an audio-file library we do not need)."""
    global _RNNOISE
    if _RNNOISE is None:
        import ctypes
        import importlib.util

        spec = importlib.util.find_spec("pyrnnoise")
        if spec is None or not spec.submodule_search_locations:
            raise DuettoError("RNNoise is not installed", "pip install pyrnnoise")
        lib = ctypes.CDLL(str(Path(spec.submodule_search_locations[0]) / "librnnoise.so"))
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p] + [
            ctypes.POINTER(ctypes.c_float)
        ] * 2
        _RNNOISE = lib
    return _RNNOISE


def rnnoise(audio: np.ndarray) -> np.ndarray:
    """RNNoise noise suppression of 16 kHz audio (resampled to 48 kHz and back)."""
    import ctypes

    from duetto.audio import resample, run_frames

    lib = _rnnoise_library()
    x = resample(audio.astype(np.float32), SAMPLE_RATE, RNNOISE_RATE) * 32768.0
    state = lib.rnnoise_create(None)
    pointer = ctypes.POINTER(ctypes.c_float)

    def process(block: np.ndarray, out: np.ndarray) -> None:
        lib.rnnoise_process_frame(state, out.ctypes.data_as(pointer), block.ctypes.data_as(pointer))

    try:
        aligned = run_frames(x, RNNOISE_FRAME, RNNOISE_DELAY, process) / 32768.0
    finally:
        lib.rnnoise_destroy(state)
    back = resample(aligned, RNNOISE_RATE, SAMPLE_RATE)[: len(audio)]
    return np.clip(back, -1.0, 1.0).astype(np.float32)


def adaptive_threshold(audio: np.ndarray) -> float:
    """The VAD threshold for this audio's noise floor: 0.5 when clean, lower in noise."""
    snr = estimated_snr(audio)
    if snr >= ADAPT_HIGH_SNR:
        return VAD_THRESHOLD
    frac = (ADAPT_HIGH_SNR - max(snr, ADAPT_LOW_SNR)) / (ADAPT_HIGH_SNR - ADAPT_LOW_SNR)
    return VAD_THRESHOLD - frac * (VAD_THRESHOLD - ADAPT_MIN_THRESHOLD)


class Evaluator:
    """Runs the engine's ASR and VAD over conditions; models are loaded once."""

    def __init__(
        self,
        config: EvalConfig = EvalConfig(),
        babble_manifest: str | Path | None = None,
        seed: int = 0,
        run_asr: bool = True,
        word_probs: bool = False,
    ):
        from duetto.asr.whisper import WhisperASR
        from duetto.config import ASRSettings
        from duetto.vad import load_vad

        self.config = config
        self.seed = seed
        self.run_asr = run_asr  # False: VAD figures only (WER reads as 100% deletions)
        self.word_probs = word_probs
        # Its own instance, not load_asr()'s cached one: a sweep builds an Evaluator per variant,
        # and the cache would keep every variant's model loaded until the process ends.
        self.asr = WhisperASR(
            ASRSettings(
                model=config.model,
                beam_size=config.beam_size,
                loop_guard=config.loop_guard,
                min_word_prob=config.min_word_prob,
                min_word_level_db=config.min_word_level_db,
                filter_below_snr_db=config.filter_below_snr_db,
                word_filter=config.word_filter,
                word_filter_threshold=config.word_filter_threshold,
                noisy_beam_size=config.noisy_beam_size,
                noisy_speeds=config.noisy_speeds,
                noisy_lm=config.noisy_lm,
                noisy_second_model=config.noisy_second_model,
            )
        )
        self.vad = load_vad()
        self.babble_manifest = babble_manifest
        self._sources: dict = {}

    def _source(self, name: str):
        if name not in self._sources:
            self._sources[name] = noise_source(name, self.babble_manifest)
        return self._sources[name]

    def run(
        self,
        utterances: Sequence[Utterance],
        conditions: Sequence[Condition],
        progress: bool = True,
    ) -> tuple[list[UttResult], list[Problem]]:
        from duetto.vad import speech_probabilities

        results: list[UttResult] = []
        problems: list[Problem] = []
        bar = _progress(len(utterances) * len(conditions), progress)
        for utt in utterances:
            try:
                clean = load_audio(utt.audio)
            except DuettoError as exc:
                problems.append(Problem(Path(utt.audio), utt.line, str(exc)))
                bar.update(len(conditions))
                continue
            ref_speech = speech_probabilities(clean, self.vad) >= VAD_THRESHOLD
            for cond in conditions:
                audio = clean
                if cond.noise != CLEAN:
                    rng = stable_rng(self.seed, utt.id, cond.noise, cond.snr)
                    noise = self._source(cond.noise).noise(
                        len(clean), rng, exclude_speaker=utt.speaker
                    )
                    audio = mix_at_snr(clean, noise, cond.snr).audio
                results.append(self._one(utt, cond, audio, ref_speech))
                bar.update(1)
        bar.close()
        return results, problems

    def _one(
        self, utt: Utterance, cond: Condition, audio: np.ndarray, ref_speech: np.ndarray
    ) -> UttResult:
        import time

        from duetto.vad import speech_probabilities

        started = time.perf_counter()
        front = denoise(audio, self.config.denoise)
        front_seconds = time.perf_counter() - started
        threshold = adaptive_threshold(front) if self.config.adaptive_vad else VAD_THRESHOLD
        speech = speech_probabilities(front, self.vad) >= threshold
        hyp, asr_seconds, probs = "", 0.0, ()
        if self.run_asr:
            out = self.asr.transcribe(front, words=self.word_probs)
            asr_seconds, hyp = out.seconds, out.text
            if self.word_probs:
                probs = tuple((w.word, w.probability) for w in out.words)
        errors, words = word_errors(normalize_text(utt.text), normalize_text(hyp))
        return UttResult(
            id=utt.id,
            speaker=utt.speaker,
            age=utt.age,
            gender=utt.gender,
            condition=cond,
            ref=utt.text,
            hyp=hyp,
            errors=errors,
            words=words,
            seconds=asr_seconds + front_seconds,
            duration=len(audio) / SAMPLE_RATE,
            speech_windows=int(ref_speech.sum()),
            missed_windows=int((ref_speech & ~speech).sum()),
            silence_windows=int((~ref_speech).sum()),
            false_alarm_windows=int((~ref_speech & speech).sum()),
            vad_threshold=round(threshold, 3),
            word_probs=probs,
        )


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="utt", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def age_band(age: int | None) -> str:
    if age is None:
        return "unknown"
    for lo, hi, name in AGE_BANDS:
        if lo <= age < hi:
            return name
    return "unknown"


def group_of(r: UttResult, key: str) -> str:
    if key == "age":
        return age_band(r.age)
    if key == "gender":
        return r.gender or "unknown"
    if key == "speaker":
        return r.speaker or "unknown"
    raise DuettoError(f"cannot split by '{key}'", "use age, gender or speaker")


@dataclass(frozen=True)
class Summary:
    condition: str
    group: str  # "all" or "age=child <12" ...
    utterances: int
    wer: float
    rtf: float
    vad_miss: float
    vad_false_alarm: float

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(results: Iterable[UttResult], by: Sequence[str] = ()) -> list[Summary]:
    """Corpus-level figures per condition, overall and per value of each ``by`` key."""
    results = list(results)
    conditions = list(dict.fromkeys(r.condition for r in results))
    out: list[Summary] = []
    for cond in conditions:
        rs = [r for r in results if r.condition == cond]
        out.append(_summary(cond.label, "all", rs))
        for key in by:
            groups: dict[str, list[UttResult]] = {}
            for r in rs:
                groups.setdefault(group_of(r, key), []).append(r)
            for name in sorted(groups):
                out.append(_summary(cond.label, f"{key}={name}", groups[name]))
    return out


def _summary(label: str, group: str, rs: list[UttResult]) -> Summary:
    words = sum(r.words for r in rs)
    speech = sum(r.speech_windows for r in rs)
    silence = sum(r.silence_windows for r in rs)
    return Summary(
        condition=label,
        group=group,
        utterances=len(rs),
        wer=sum(r.errors for r in rs) / words if words else math.nan,
        rtf=sum(r.seconds for r in rs) / max(sum(r.duration for r in rs), 1e-9),
        vad_miss=sum(r.missed_windows for r in rs) / speech if speech else math.nan,
        vad_false_alarm=sum(r.false_alarm_windows for r in rs) / silence if silence else math.nan,
    )


def format_table(summaries: Sequence[Summary]) -> str:
    lines = [
        f"{'condition':<16} {'group':<20} {'n':>4} {'WER':>7} {'RTF':>6} {'VAD miss':>9} {'VAD FA':>7}"
    ]
    for s in summaries:
        lines.append(
            f"{s.condition:<16} {s.group:<20} {s.utterances:>4} {s.wer:>7.1%} {s.rtf:>6.3f} "
            f"{s.vad_miss:>9.1%} {s.vad_false_alarm:>7.1%}"
        )
    return "\n".join(lines)


def name_of(run: str, noise: str, group: str) -> str:
    return " · ".join(p for p in (run, noise, "" if group == "all" else group) if p)


def plot_wer_vs_snr(
    curves: dict[str, Sequence[Summary]], out: str | Path, title: str = "ASR word error rate vs SNR"
) -> Path:
    """One line per (run label, noise[, group]) of WER against SNR; clean drawn at the right edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    clean_x = None
    all_snrs = sorted(
        {
            float(s.condition.split()[1])
            for ss in curves.values()
            for s in ss
            if s.condition != CLEAN
        }
    )
    if all_snrs:
        step = (all_snrs[-1] - all_snrs[0]) / max(len(all_snrs) - 1, 1) or 5
        clean_x = all_snrs[-1] + step
    styles = ["-", "--", ":", "-."]
    colours: dict[str, int] = {}
    high: list[tuple[float, float, str]] = []
    for i, (run, summaries) in enumerate(curves.items()):
        groups = list(dict.fromkeys(s.group for s in summaries))
        noises = list(
            dict.fromkeys(s.condition.split()[0] for s in summaries if s.condition != CLEAN)
        )
        for group in groups:
            clean = [s for s in summaries if s.condition == CLEAN and s.group == group]
            for noise in noises:
                pts = sorted(
                    (float(s.condition.split()[1]), s.wer)
                    for s in summaries
                    if s.group == group and s.condition.startswith(noise + " ")
                )
                if clean and clean_x is not None:
                    pts.append((clean_x, clean[0].wer))
                if not pts:
                    continue
                xs, ys = zip(*pts, strict=True)
                high += [(x, y, name_of(run, noise, group)) for x, y in pts if 100 * y > Y_CAP]
                key = f"{noise}|{group}"
                colour = f"C{colours.setdefault(key, len(colours)) % 10}"
                name = name_of(run, noise, group)
                ys_capped = [min(100 * y, Y_CAP) for y in ys]
                ax.plot(
                    xs, ys_capped, marker="o", ls=styles[i % len(styles)], color=colour, label=name
                )
    for k, (x, y, name) in enumerate(high):
        ax.annotate(
            f"{name}: {100 * y:.0f}%",
            (x, Y_CAP),
            textcoords="offset points",
            xytext=(6, -12 * (k + 1)),
            fontsize=8,
        )
    if high:
        ax.set_ylim(top=Y_CAP + 5)
    if clean_x is not None:
        ticks = all_snrs + [clean_x]
        ax.set_xticks(ticks, [f"{t:g}" for t in all_snrs] + ["clean"])
    ax.set_xlabel("SNR on active speech (dB)")
    ax.set_ylabel("WER (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out
