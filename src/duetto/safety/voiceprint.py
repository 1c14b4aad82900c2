"""Voiceprints: enrol a speaker on a few utterances, then verify that a new clip is that speaker.

Speaker embeddings come from the bundled Resemblyzer encoder (GE2E, 256 dimensions; needs the
optional extra ``duetto[safety]``). What improves on "embed the raw file, cosine score"
(each step measured in bench/voiceprint.py on speechocean762 dev, choices made on train):

1. speech only: silence is cut before embedding (Resemblyzer's webrtcvad preprocessing; our
   Silero VAD was measured too and did worse with this encoder);
2. domain centring: the mean embedding of speechocean762 *train* (``domain_mean.npz``) is
   subtracted from every embedding and the result length-normalised, so the cosine stops
   rewarding what all speakers of this domain (children, L2 English, one microphone) share;
3. enrolment: the mean of the centred, unit-length utterance embeddings (the store keeps the
   raw per-utterance embeddings, so a later back-end can re-score old enrolments);
4. a second, complementary system fused at score level: an MFCC GMM-UBM fitted on
   speechocean762 train (:mod:`duetto.safety.gmm_ubm`, ``ubm.npz``); both scores are standardised
   and averaged with a weight chosen on train. Enrolments stored before it (no GMM statistics),
   or ``fusion=False`` / ``DUETTO_VOICEPRINT_FUSION=0``, score with Resemblyzer alone;
5. score normalisation: before fusion each system's score is S-normalised against a cohort of
   train speakers of the enrolled speaker's group, child, woman or man, declared at enrolment
   or guessed from the voice (:mod:`duetto.safety.cohort`, ``cohort.npz``). Enrolments stored
   before it are scored as in step 4.

LDA, WCCN, nuisance projection, a two-covariance PLDA, S-norm against a cohort of every group
and a Whisper-encoder embedding fused at score level were measured too and did not help
(docs/trust.md).

Before any of that, the clip is checked for duetto's audio watermark: a clip our TTS made is
never accepted as a human speaker (``VerifyResult.synthetic``).

Enrolments live in a small SQLite file (default ``~/.local/share/duetto/voiceprints.sqlite``,
or ``$DUETTO_VOICEPRINTS``).
"""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from duetto.audio import SAMPLE_RATE
from duetto.errors import DuettoError, MissingExtraError, NoSpeechError

EMBED_DIM = 256
# Shortest speech Resemblyzer embeds well: it averages 1.6 s partial windows.
MIN_SPEECH_S = 0.5
# A clip whose loudest sample is under this (-80 dBFS) is digital silence.
SILENT_PEAK = 1e-4
# Speech regions are padded by this much so word edges are not cut.
VAD_PAD_S = 0.1
# Decision threshold on the centred cosine: the equal-error point on speechocean762 *train*,
# cross-validated over two halves of its speakers (bench/voiceprint.py prints it).
THRESHOLD = 0.35
DOMAIN_FILE = Path(__file__).with_name("domain_mean.npz")


class UnknownSpeakerError(DuettoError):
    """No enrolment under that name."""

    http_status = 404
    code = "unknown_speaker"


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: ``accepted`` only for a human clip that scores over threshold."""

    name: str
    accepted: bool
    score: float  # compared with ``threshold``: the fused score, or the centred cosine alone
    cosine: float
    threshold: float
    synthetic: bool  # the clip carries duetto's watermark: made by our TTS, never a human
    reason: str
    centred_cosine: float | None = None  # Resemblyzer's score (see :func:`score`)
    llr: float | None = None  # the GMM-UBM's log-likelihood ratio, when it was fused in
    group: str | None = None  # the cohort group the scores were normalised against, if any


@lru_cache(maxsize=1)
def _encoder():
    try:
        with warnings.catch_warnings():
            # webrtcvad (Resemblyzer's VAD) imports pkg_resources, which warns on every run.
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise MissingExtraError("voiceprints (the Resemblyzer speaker encoder)", "safety") from exc
    return VoiceEncoder("cpu", verbose=False)


def speech_only(audio: np.ndarray, vad=None) -> np.ndarray:
    """The speech parts of 16 kHz ``audio`` (Silero VAD), joined; raises if there are none."""
    from duetto.vad import speech_segments

    segments = speech_segments(audio, vad=vad)
    pad = int(VAD_PAD_S * SAMPLE_RATE)
    parts = [
        audio[max(0, int(s * SAMPLE_RATE) - pad) : int(e * SAMPLE_RATE) + pad] for s, e in segments
    ]
    speech = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if len(speech) < MIN_SPEECH_S * SAMPLE_RATE:
        raise NoSpeechError(
            f"the clip holds {len(speech) / SAMPLE_RATE:.2f} s of speech; a voiceprint needs at least {MIN_SPEECH_S} s",
            "record a longer sentence",
        )
    return speech.astype(np.float32)


def _check_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    if not np.all(np.isfinite(audio)) or float(np.max(np.abs(audio), initial=0.0)) < SILENT_PEAK:
        raise NoSpeechError(
            "the clip is silent (or holds invalid samples)", "record the speaker again"
        )
    return audio


def webrtc_speech(audio: np.ndarray) -> np.ndarray:
    """Resemblyzer's preprocessing of 16 kHz ``audio``: webrtcvad speech only, level-normalised."""
    _encoder()  # clear error when the extra is missing; imports Resemblyzer quietly
    from resemblyzer import preprocess_wav

    speech = preprocess_wav(_check_audio(audio), SAMPLE_RATE).astype(np.float32)
    if len(speech) < MIN_SPEECH_S * SAMPLE_RATE:
        raise NoSpeechError(
            f"the clip holds {len(speech) / SAMPLE_RATE:.2f} s of speech; a voiceprint needs at least {MIN_SPEECH_S} s",
            "record a longer sentence",
        )
    return speech


def _unit_embedding(speech: np.ndarray) -> np.ndarray:
    emb = _encoder().embed_utterance(speech)
    return (emb / (np.linalg.norm(emb) + 1e-12)).astype(np.float32)


def embed(audio: np.ndarray, *, trim: bool = True, vad: str = "webrtc") -> np.ndarray:
    """Unit-length speaker embedding of 16 kHz mono ``audio``.

    With ``trim`` only the speech is embedded: cut by Resemblyzer's own webrtcvad preprocessing
    (``vad="webrtc"``, the default: measured best) or by our Silero VAD (``vad="silero"``).
    """
    audio = _check_audio(audio)
    if trim and vad == "webrtc":
        audio = webrtc_speech(audio)
    else:
        if trim:
            audio = speech_only(audio)
        elif len(audio) < MIN_SPEECH_S * SAMPLE_RATE:
            raise NoSpeechError(
                "the clip is too short for a voiceprint", f"give at least {MIN_SPEECH_S} s"
            )
        # Resemblyzer expects roughly normalised levels: -30 dBFS RMS like its own preprocessing.
        rms = float(np.sqrt(np.mean(audio**2))) or 1.0
        audio = np.clip(audio * (10 ** (-30 / 20) / rms), -1, 1).astype(np.float32)
    return _unit_embedding(audio)


def analyse(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clip's Resemblyzer embedding (as :func:`embed`) and its GMM-UBM features, one VAD pass."""
    from duetto.safety import gmm_ubm

    speech = webrtc_speech(audio)
    return _unit_embedding(speech), gmm_ubm.features(gmm_ubm.mfcc(speech))


@lru_cache(maxsize=1)
def load_domain_mean(path: str | None = None) -> np.ndarray | None:
    """Mean Resemblyzer embedding of speechocean762 train (256,), or None when the file is missing."""
    file = Path(path) if path else DOMAIN_FILE
    if not file.exists():
        return None
    return np.load(file)["mean"].astype(np.float32)


def centred(embedding: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """Unit-length ``embedding`` minus the domain mean (the shipped one unless ``mean`` is given)."""
    mean = load_domain_mean() if mean is None else mean
    x = np.asarray(embedding, np.float32) - (0.0 if mean is None else mean)
    return (x / (np.linalg.norm(x) + 1e-12)).astype(np.float32)


def enrol_embedding(
    embeddings: list[np.ndarray] | np.ndarray, mean: np.ndarray | None = None
) -> np.ndarray:
    """The voiceprint: mean of the centred, unit-length utterance embeddings, renormalised."""
    avg = np.mean([centred(e, mean) for e in np.atleast_2d(embeddings)], axis=0)
    return (avg / (np.linalg.norm(avg) + 1e-12)).astype(np.float32)


def score(enrolment: np.ndarray, test: np.ndarray, mean: np.ndarray | None = None) -> float:
    """Centred cosine between an enrolment (its raw utterance embeddings) and a test embedding."""
    return float(enrol_embedding(enrolment, mean) @ centred(test, mean))


# --- the store --------------------------------------------------------------------------------------


def default_store_path() -> Path:
    env = os.environ.get("DUETTO_VOICEPRINTS")
    return Path(env) if env else Path.home() / ".local" / "share" / "duetto" / "voiceprints.sqlite"


class VoiceprintStore:
    """Named enrolments in a SQLite file: one row per speaker, the raw utterance embeddings.

    A row written before per-utterance storage holds one embedding; it loads as one utterance.
    A second table keeps the enrolment's GMM-UBM statistics, tagged with the UBM they were taken
    against; rows written before it have none and are scored by Resemblyzer alone."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS voiceprints (name TEXT PRIMARY KEY, embedding BLOB NOT NULL,"
                " utterances INTEGER NOT NULL, created REAL NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS ubm_stats (name TEXT PRIMARY KEY, ubm TEXT NOT NULL,"
                " components INTEGER NOT NULL, stats BLOB NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS cohort_stats (name TEXT PRIMARY KEY, cohort TEXT NOT NULL,"
                " grp TEXT NOT NULL, stats BLOB NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(self.path)
        except sqlite3.Error as exc:
            raise DuettoError(
                f"cannot open the voiceprint store {self.path}: {exc}", "check the path"
            ) from None

    def save(self, name: str, embeddings: np.ndarray, utterances: int,
             ubm_stats: tuple[str, np.ndarray] | None = None,
             cohort_stats: tuple[str, str, np.ndarray] | None = None) -> None:  # fmt: skip
        """Store (replace) ``name``; ``ubm_stats``: (UBM fingerprint, pooled (C, 1 + D) stats);
        ``cohort_stats``: (cohort fingerprint, group, the enrolment side of S-norm)."""
        if not name.strip():
            raise DuettoError("a voiceprint needs a non-empty name")
        blob = np.atleast_2d(np.asarray(embeddings, np.float32)).tobytes()
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO voiceprints VALUES (?, ?, ?, ?)",
                (name, blob, int(utterances), time.time()),
            )
            db.execute("DELETE FROM ubm_stats WHERE name = ?", (name,))
            db.execute("DELETE FROM cohort_stats WHERE name = ?", (name,))
            if cohort_stats is not None:
                fingerprint, group, values = cohort_stats
                db.execute(
                    "INSERT INTO cohort_stats VALUES (?, ?, ?, ?)",
                    (name, fingerprint, group, np.asarray(values, np.float64).tobytes()),
                )
            if ubm_stats is not None:
                fingerprint, stats = ubm_stats
                stats = np.asarray(stats, np.float32)
                db.execute(
                    "INSERT INTO ubm_stats VALUES (?, ?, ?, ?)",
                    (name, fingerprint, stats.shape[0], stats.tobytes()),
                )

    def load_ubm_stats(self, name: str, fingerprint: str) -> np.ndarray | None:
        """The enrolment's GMM-UBM statistics taken against the UBM ``fingerprint``, else None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT components, stats FROM ubm_stats WHERE name = ? AND ubm = ?",
                (name, fingerprint),
            ).fetchone()
        if row is None:
            return None
        return np.frombuffer(row[1], np.float32).reshape(row[0], -1).astype(np.float64)

    def load_cohort_stats(self, name: str, fingerprint: str) -> tuple[str, np.ndarray] | None:
        """(group, S-norm enrolment statistics) taken against the cohort ``fingerprint``, else None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT grp, stats FROM cohort_stats WHERE name = ? AND cohort = ?",
                (name, fingerprint),
            ).fetchone()
        return None if row is None else (row[0], np.frombuffer(row[1], np.float64).copy())

    def load(self, name: str) -> np.ndarray:
        """The enrolment's utterance embeddings, shape (utterances, 256)."""
        with self._connect() as db:
            row = db.execute("SELECT embedding FROM voiceprints WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownSpeakerError(
                f"no voiceprint named '{name}' in {self.path}",
                f"enrol first: duetto safety enroll {name} FILE...",
            )
        return np.frombuffer(row[0], np.float32).reshape(-1, EMBED_DIM).copy()

    def names(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT name FROM voiceprints ORDER BY name")]

    def delete(self, name: str) -> bool:
        with self._connect() as db:
            db.execute("DELETE FROM ubm_stats WHERE name = ?", (name,))
            db.execute("DELETE FROM cohort_stats WHERE name = ?", (name,))
            return db.execute("DELETE FROM voiceprints WHERE name = ?", (name,)).rowcount > 0


# --- enrol and verify -------------------------------------------------------------------------------


def fusion_enabled(fusion: bool | None = None) -> bool:
    """Whether the GMM-UBM is fused in: ``fusion`` if given, else ``$DUETTO_VOICEPRINT_FUSION``
    (``0`` turns it off), on by default when ``ubm.npz`` ships."""
    from duetto.safety.gmm_ubm import load_backend

    if fusion is None:
        fusion = os.environ.get("DUETTO_VOICEPRINT_FUSION", "1").strip().lower() not in ("0", "false", "no", "off")  # fmt: skip
    return bool(fusion) and load_backend() is not None


def _cohort_for(backend):
    """The shipped cohort when it was built on ``backend``'s UBM, else None."""
    from duetto.safety import cohort

    found = None if backend is None else cohort.load()
    return found if found is not None and found.ubm == backend.ubm.fingerprint else None


def enroll(name: str, clips: list[np.ndarray], store: VoiceprintStore | None = None, *,
           fusion: bool | None = None, group: str | None = None) -> np.ndarray:  # fmt: skip
    """Enrol ``name`` on 16 kHz clips (at least one; three or more is better).

    Returns the voiceprint (:func:`enrol_embedding`); the store keeps each clip's embedding and,
    with ``fusion`` (:func:`fusion_enabled`), the clips' pooled GMM-UBM statistics and their
    scores against the cohort of ``group`` ("child", "female", "male"; guessed from the voice
    when not given; :mod:`duetto.safety.cohort`).
    Clips that carry duetto's watermark are refused: a voiceprint must come from a human.
    """
    from duetto.safety import cohort as cohort_mod
    from duetto.safety.gmm_ubm import load_backend
    from duetto.safety.watermark import DETECT_RATE, detect

    if not clips:
        raise DuettoError("enrolment needs at least one audio clip", "give 3 or more utterances")
    if group is not None:
        cohort_mod.check_group(group)
    backend = load_backend() if fusion_enabled(fusion) else None
    embeddings, stats, analysed = [], 0.0, []
    for i, clip in enumerate(clips):
        if detect(clip, DETECT_RATE).found:
            raise DuettoError(
                f"clip {i + 1} carries duetto's watermark: it is synthetic speech", "enrol a human"
            )
        try:
            if backend is None:
                embeddings.append(embed(clip))
            else:
                emb, feats = analyse(clip)
                embeddings.append(emb)
                stats = stats + backend.ubm.stats(feats)
                analysed.append((centred(emb), feats))
        except NoSpeechError as exc:
            raise NoSpeechError(f"enrolment clip {i + 1}: {exc.message}", exc.hint) from None
    voiceprint = enrol_embedding(embeddings)
    ubm_stats = None if backend is None else (backend.ubm.fingerprint, stats)
    cohort, cohort_stats = _cohort_for(backend), None
    if cohort is not None:
        group = group or cohort.predict_group(voiceprint)
        values = cohort.enrolment_stats(backend.ubm, analysed, group)
        cohort_stats = (cohort.fingerprint, group, values)
    (store or VoiceprintStore()).save(
        name, np.stack(embeddings), len(clips), ubm_stats, cohort_stats
    )
    return voiceprint


def verify(name: str, clip: np.ndarray, store: VoiceprintStore | None = None, *,
           threshold: float | None = None, fusion: bool | None = None) -> VerifyResult:  # fmt: skip
    """Does the 16 kHz ``clip`` come from the enrolled human ``name``?

    The score is Resemblyzer's centred cosine fused with the GMM-UBM's log-likelihood ratio when
    ``fusion`` is on (:func:`fusion_enabled`) and the enrolment holds statistics for the shipped
    UBM, each S-normalised against the enrolled group's cohort first when the enrolment holds
    cohort statistics; otherwise the centred cosine alone. ``threshold`` defaults to the one
    fitted for that score.
    """
    from duetto.safety.gmm_ubm import load_backend
    from duetto.safety.watermark import DETECT_RATE, detect

    store = store or VoiceprintStore()
    enrolment = store.load(name)
    backend = load_backend() if fusion_enabled(fusion) else None
    stats = None if backend is None else store.load_ubm_stats(name, backend.ubm.fingerprint)
    cohort = _cohort_for(backend) if stats is not None else None
    normed = None if cohort is None else store.load_cohort_stats(name, cohort.fingerprint)
    mark = detect(clip, DETECT_RATE)
    group = None
    if stats is None:
        test, llr = embed(clip), None
    else:
        test, feats = analyse(clip)
        relevance = backend.relevance if normed is None else cohort.relevance
        llr = backend.ubm.llr(backend.ubm.map_means(stats, relevance), feats)
    raw = enrolment.mean(axis=0)
    cosine = float(raw @ test / (np.linalg.norm(raw) + 1e-12))
    centred_cos = score(enrolment, test)
    if llr is None:
        value, fitted = centred_cos, THRESHOLD
    elif normed is None:
        value, fitted = backend.fuse(centred_cos, llr), backend.threshold
    else:
        group, enrol_side = normed
        parts = cohort.normalised(backend.ubm, (centred_cos, llr), enrol_side,
                                  (centred(test), feats), group)  # fmt: skip
        value, fitted = cohort.fuse(*parts), cohort.threshold
    threshold = fitted if threshold is None else threshold
    if mark.found:
        return VerifyResult(name, False, value, cosine, threshold, True,
                            f"synthetic speech: duetto's watermark found (confidence {mark.confidence:.3f})",
                            centred_cos, llr, group)  # fmt: skip
    accepted = value >= threshold
    reason = "voice matches" if accepted else "voice does not match"
    return VerifyResult(name, accepted, value, cosine, threshold, False, reason, centred_cos, llr,
                        group)  # fmt: skip
