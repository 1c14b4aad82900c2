"""Data augmentation: speed and tempo perturbation, SpecAugment masks, and the manifest-to-manifest
``duetto data augment`` run (noise at an exact SNR, resumable, deterministic for a seed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from duetto.audio import SAMPLE_RATE, load_audio, resample, write_wav
from duetto.data.manifest import Problem, Utterance, read_manifest, write_manifest
from duetto.data.noise import (
    NoiseSource,
    check_snr,
    fit_length,
    mix_at_snr,
    noise_source,
    stable_rng,
)
from duetto.errors import DuettoError

# Kaldi's recipes use 0.9/1.0/1.1; beyond 0.5..2.0 speech stops being natural speech.
MIN_SPEED = 0.5
MAX_SPEED = 2.0
# Speed factors are rounded to this step so the resampling ratio stays a small fraction.
SPEED_STEP = 0.01
# SpecAugment "LD" policy of Park et al. (2019) for 80 mel bands: 2 frequency masks of up to 27
# bands, 2 time masks of up to 100 frames but at most 5% of the utterance each.
FREQ_MASKS, FREQ_WIDTH = 2, 27
TIME_MASKS, TIME_WIDTH, TIME_RATIO = 2, 100, 0.05
N_MELS = 80
# 25 ms windows every 10 ms: the usual ASR front end.
WIN_LENGTH, HOP_LENGTH = 400, 160


def check_speed(speed: float) -> float:
    """Return ``speed`` or raise :class:`DuettoError` when it is outside sane bounds."""
    if not np.isfinite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise DuettoError(
            f"speed {speed} is outside the sane range {MIN_SPEED}..{MAX_SPEED}",
            "Kaldi-style perturbation uses 0.9, 1.0 and 1.1; try --speed 0.9..1.1",
        )
    return float(speed)


def speed_perturb(audio: np.ndarray, speed: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Kaldi/sox ``speed``: play faster or slower, changing tempo AND pitch by ``speed``.

    The signal is taken as if sampled at ``rate·speed`` and resampled to ``rate``, so its
    length becomes ``len/speed``.
    """
    check_speed(speed)
    if speed == 1.0:
        return audio.astype(np.float32, copy=True)
    ratio = Fraction(speed).limit_denominator(int(round(1 / SPEED_STEP)))
    return resample(audio, rate * ratio.numerator, rate * ratio.denominator)


def tempo_perturb(audio: np.ndarray, tempo: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Change the tempo by ``tempo`` keeping the pitch (librosa's phase vocoder)."""
    check_speed(tempo)
    if tempo == 1.0:
        return audio.astype(np.float32, copy=True)
    import librosa

    # 512-sample FFT (32 ms at 16 kHz) keeps the phase vocoder's smearing within a phone.
    out = librosa.effects.time_stretch(audio.astype(np.float32), rate=tempo, n_fft=512)
    return out.astype(np.float32)


def log_mel(audio: np.ndarray, rate: int = SAMPLE_RATE, n_mels: int = N_MELS) -> np.ndarray:
    """Log-mel features, shape (n_mels, frames), 25 ms windows every 10 ms."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=audio.astype(np.float32),
        sr=rate,
        n_fft=512,
        win_length=WIN_LENGTH,
        hop_length=HOP_LENGTH,
        n_mels=n_mels,
    )
    return np.log(mel + 1e-6).astype(np.float32)


def spec_augment(
    features: np.ndarray,
    rng: np.random.Generator,
    *,
    freq_masks: int = FREQ_MASKS,
    freq_width: int = FREQ_WIDTH,
    time_masks: int = TIME_MASKS,
    time_width: int = TIME_WIDTH,
    time_ratio: float = TIME_RATIO,
    value: float | None = None,
) -> np.ndarray:
    """SpecAugment frequency and time masks on ``features`` of shape (bins, frames).

    Returns a masked copy; masked cells are set to ``value`` (default: the features' mean, so the
    masks do not shift the input statistics). Each time mask is at most ``time_ratio`` of the
    frames and ``time_width`` frames long.
    """
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (bins, frames), got shape {features.shape}")
    out = np.array(features, dtype=np.float32, copy=True)
    fill = float(out.mean()) if value is None else value
    bins, frames = out.shape
    for _ in range(freq_masks):
        width = int(rng.integers(0, min(freq_width, bins) + 1))
        start = int(rng.integers(0, bins - width + 1))
        out[start : start + width, :] = fill
    max_t = min(time_width, int(time_ratio * frames))
    for _ in range(time_masks):
        width = int(rng.integers(0, max_t + 1))
        start = int(rng.integers(0, frames - width + 1))
        out[:, start : start + width] = fill
    return out


@dataclass(frozen=True)
class AugmentOptions:
    noise: tuple[str, ...] = ()  # drawn per utterance among these
    snr: tuple[float, float] | None = None  # uniform in [lo, hi] (lo == hi for a fixed SNR)
    speed: tuple[float, float] | None = None
    tempo: tuple[float, float] | None = None
    specaugment: bool = False
    seed: int = 0
    babble_manifest: str | None = None

    def __post_init__(self):
        if self.noise and self.snr is None:
            raise DuettoError("--noise needs --snr", "e.g. --snr 5 or --snr 0..20")
        if self.snr is not None and not self.noise:
            raise DuettoError("--snr needs --noise", "e.g. --noise babble or --noise white")
        for lo_hi, check in (
            (self.snr, check_snr),
            (self.speed, check_speed),
            (self.tempo, check_speed),
        ):
            if lo_hi is not None:
                check(lo_hi[0])
                check(lo_hi[1])
                if lo_hi[0] > lo_hi[1]:
                    raise DuettoError(
                        f"range {lo_hi[0]}..{lo_hi[1]} is reversed", "write LOW..HIGH"
                    )
        if self.speed and self.tempo:
            raise DuettoError("--speed and --tempo both change the duration", "choose one of them")
        if not (self.noise or self.speed or self.tempo or self.specaugment):
            raise DuettoError(
                "nothing to do", "give --noise/--snr, --speed, --tempo or --specaugment"
            )


@dataclass
class AugmentReport:
    written: int = 0
    skipped_existing: int = 0
    problems: list[Problem] = field(default_factory=list)
    manifest: Path | None = None


def augment_one(
    audio: np.ndarray, utt: Utterance, options: AugmentOptions, sources: dict[str, NoiseSource]
) -> tuple[np.ndarray, dict]:
    """The augmented audio of one utterance and the metadata describing what was done."""
    rng = stable_rng(options.seed, utt.id)
    info: dict = {"source_id": utt.id}
    if options.speed:
        speed = _draw(rng, options.speed, SPEED_STEP)
        audio = speed_perturb(audio, speed)
        info["speed"] = speed
    if options.tempo:
        tempo = _draw(rng, options.tempo, SPEED_STEP)
        audio = tempo_perturb(audio, tempo)
        info["tempo"] = tempo
    if options.noise:
        kind = options.noise[int(rng.integers(len(options.noise)))]
        snr = _draw(rng, options.snr, 0.1)
        noise = sources[kind].noise(len(audio), rng, exclude_speaker=utt.speaker)
        mix = mix_at_snr(audio, fit_length(noise, len(audio), rng), snr)
        audio = mix.audio
        info.update(noise=sources[kind].name, snr=round(mix.snr_db, 2))
    return audio, info


def _draw(rng: np.random.Generator, lo_hi: tuple[float, float], step: float) -> float:
    lo, hi = lo_hi
    value = lo if lo == hi else float(rng.uniform(lo, hi))
    return round(round(value / step) * step, 4)


def run_augment(
    manifest: str | Path,
    out_dir: str | Path,
    options: AugmentOptions,
    progress: bool = True,
    on_problem: Callable[[Problem], None] | None = None,
) -> AugmentReport:
    """Augment every utterance of ``manifest`` into ``out_dir/audio`` and write
    ``out_dir/manifest.jsonl``. Outputs that already exist complete are kept (resumable);
    outputs are written to a temporary name and renamed, so an existing file is complete.
    """
    src = read_manifest(manifest)
    out_dir = Path(out_dir)
    audio_dir = out_dir / "audio"
    feats_dir = out_dir / "features"
    audio_dir.mkdir(parents=True, exist_ok=True)
    report = AugmentReport(problems=list(src.problems))
    for p in src.problems:
        if on_problem:
            on_problem(p)
    sources = {k: noise_source(k, options.babble_manifest) for k in options.noise}
    rows: list[dict] = []
    bar = _progress(len(src), progress)
    for utt in src:
        wav = audio_dir / f"{utt.id}.wav"
        meta = wav.with_suffix(".json")
        feats = feats_dir / f"{utt.id}.npy"
        if wav.is_file() and meta.is_file() and (not options.specaugment or feats.is_file()):
            rows.append(json.loads(meta.read_text()))
            report.skipped_existing += 1
            bar.update(1)
            continue
        try:
            audio = load_audio(utt.audio)
            augmented, info = augment_one(audio, utt, options, sources)
        except DuettoError as exc:
            problem = Problem(src.path, utt.line, f"{utt.audio}: {exc}")
            report.problems.append(problem)
            if on_problem:
                on_problem(problem)
            bar.update(1)
            continue
        extra = {}
        if options.specaugment:
            masked = spec_augment(
                log_mel(augmented), stable_rng(options.seed, utt.id, "specaugment")
            )
            _atomic_save_npy(feats, masked)
            extra["features"] = str(feats.relative_to(out_dir))
        _atomic_write_wav(wav, augmented)
        row = utt.to_row(
            out_dir,
            audio=wav,
            duration=round(len(augmented) / SAMPLE_RATE, 3),
            augmentation=info,
            **extra,
        )
        _atomic_write_text(meta, json.dumps(row, ensure_ascii=False))
        rows.append(row)
        report.written += 1
        bar.update(1)
    bar.close()
    report.manifest = write_manifest(out_dir / "manifest.jsonl", rows)
    return report


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="utt", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _atomic_write_wav(path: Path, audio: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".part.wav")
    write_wav(tmp, audio, SAMPLE_RATE)
    tmp.replace(path)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.npy")
    np.save(tmp, array)
    tmp.replace(path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def parse_range(text: str, what: str) -> tuple[float, float]:
    """``"5"`` -> (5, 5); ``"0.9..1.1"`` -> (0.9, 1.1)."""
    try:
        if ".." in text:
            lo, hi = text.split("..", 1)
            return float(lo), float(hi)
        value = float(text)
        return value, value
    except ValueError:
        raise DuettoError(
            f"{what} '{text}' is not a number or a range", "write e.g. 5 or 0..20"
        ) from None
