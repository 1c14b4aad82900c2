"""Reading speechocean762 (../shared/data/speechocean762) for training and benchmarks.

The corpus labels phones with stress digits and a few extra phones of its own; the acoustic
model knows the 39 CMU phones, so :func:`model_phone` maps each canonical phone onto them.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from duetto.errors import ModelNotFoundError


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: Path
    text: str
    speaker: str
    age: int
    words: tuple[str, ...]
    phones: tuple[tuple[str, ...], ...]  # canonical corpus phones per word (with stress digits)
    scores: dict = field(default_factory=dict)  # accuracy, completeness, fluency, prosodic, total
    word_scores: dict = field(default_factory=dict)  # word index -> (accuracy, stress, total)
    phone_scores: dict = field(default_factory=dict)  # (word index, phone index) -> mean score


def model_phone(phone: str) -> str:
    """Corpus phone ("AH0") -> acoustic-model phone ("AH")."""
    return re.sub(r"\d", "", phone).upper()


def load(root: Path, split: str) -> list[Utterance]:
    """The utterances of ``split`` ('train' or 'dev') with all their human scores."""
    root = Path(root)
    if not (root / f"{split}.jsonl").is_file():
        raise ModelNotFoundError(f"no {split}.jsonl under {root}", "point --data at speechocean762")
    rows = [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines() if line]
    ids = {r["id"] for r in rows}
    phones: dict[str, dict[int, tuple[str, ...]]] = defaultdict(dict)
    for line in (root / "text-phone").read_text().splitlines():
        key, _, value = line.partition("\t")
        utt, _, idx = key.rpartition(".")
        if utt in ids:
            phones[utt][int(idx)] = tuple(p.split("_")[0] for p in value.split())
    utt_scores = _tsv(root / "scores" / "utterances.tsv", ids)
    word_rows = _tsv_all(root / "scores" / "words.tsv", ids)
    phone_rows = _tsv_all(root / "scores" / "phones.tsv", ids)
    words: dict[str, dict[int, tuple[float, float, float]]] = defaultdict(dict)
    for r in word_rows:
        words[r["utt_id"]][int(r["word_idx"])] = (
            float(r["accuracy_median"]), float(r["stress_median"]), float(r["total_median"]))  # fmt: skip
    phone_scores: dict[str, dict[tuple[int, int], float]] = defaultdict(dict)
    for r in phone_rows:
        if r["phone_final_canonical"]:  # empty where the experts' phone count differed
            phone_scores[r["utt_id"]][(int(r["word_idx"]), int(r["phone_idx"]))] = float(
                r["score_mean5"]
            )
    out = []
    for r in rows:
        utt = r["id"]
        n = len(phones[utt])
        s = utt_scores.get(utt, {})
        scores = {
            "accuracy": float(s.get("accuracy_median", "nan")),
            "completeness": float(s.get("completeness_median_x10", "nan")),
            "fluency": float(s.get("fluency_median", "nan")),
            "prosodic": float(s.get("prosodic_median", "nan")),
            "total": float(s.get("total_median", "nan")),
        }
        out.append(
            Utterance(
                id=utt,
                audio=root / r["audio"],
                text=r["text"],
                speaker=r["speaker"],
                age=int(r["age"]),
                words=tuple(r["text"].split()[:n])
                if len(r["text"].split()) == n
                else tuple(w.upper() for w in s.get("text", "").split()),
                phones=tuple(phones[utt][i] for i in range(n)),
                scores=scores,
                word_scores=words[utt],
                phone_scores=phone_scores[utt],
            )  # fmt: skip
        )
    return out


def _tsv_all(path: Path, ids: set[str]) -> list[dict]:
    with path.open(newline="") as fh:
        return [r for r in csv.DictReader(fh, delimiter="\t") if r["utt_id"] in ids]


def _tsv(path: Path, ids: set[str]) -> dict[str, dict]:
    return {r["utt_id"]: r for r in _tsv_all(path, ids)}


def evidence_cache() -> Path:
    """Where extracted evidence is cached (under the user's duetto cache, never the repo)."""
    from duetto.models import cache_dir

    path = cache_dir() / "tutor" / "evidence"
    path.mkdir(parents=True, exist_ok=True)
    return path


def evidence_for(utt: Utterance, asr=None, refresh: bool = False):
    """The :class:`~duetto.apps.tutor.evidence.Evidence` of ``utt``, cached as JSON.

    The acoustic part and the ASR part are cached apart (``<id>.json``, ``<id>.asr.json``):
    the ASR costs twice the alignment, so it is added only when ``asr`` is given.
    """
    from dataclasses import replace

    from duetto.apps.tutor.evidence import Evidence, HeardWord, gather, transcribe
    from duetto.audio import load_audio

    path = evidence_cache() / f"{utt.id}.json"
    asr_path = evidence_cache() / f"{utt.id}.asr.json"
    audio = None
    if path.is_file() and not refresh:
        ev = Evidence.from_dict(json.loads(path.read_text()))
    else:
        audio = load_audio(utt.audio)
        pron = [[model_phone(p) for p in phones] for phones in utt.phones]
        ev = gather(audio, list(utt.words), pron, asr=None)
        _write(path, ev.to_dict())
    if asr_path.is_file() and not refresh:
        data = json.loads(asr_path.read_text())
    elif asr is not None:
        audio = load_audio(utt.audio) if audio is None else audio
        words, text, logprob, seconds = transcribe(asr, audio)
        data = {"asr_words": [w.__dict__ for w in words], "asr_text": text, "asr_logprob": logprob,
                "seconds": seconds}  # fmt: skip
        _write(asr_path, data)
    else:
        return ev
    return replace(
        ev, asr_words=tuple(HeardWord(**w) for w in data["asr_words"]), asr_text=data["asr_text"],
        asr_logprob=data["asr_logprob"], seconds={**ev.seconds, "asr": data["seconds"]},
    )  # fmt: skip


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def whisper_for(utt: Utterance, asr=None):
    """The :class:`~duetto.apps.tutor.whisper_evidence.WhisperEvidence` of ``utt``, cached (.npz)."""
    from duetto.apps.tutor.whisper_evidence import WhisperEvidence, gather_whisper
    from duetto.audio import load_audio

    path = evidence_cache() / f"{utt.id}.whisper.npz"
    if path.is_file():
        with np.load(path) as data:
            flat, lengths = data["probs"], data["lengths"]
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            probs = tuple(
                tuple(flat[offsets[i] : offsets[i + 1]].tolist()) for i in range(len(lengths))
            )
            return WhisperEvidence(data["states"], probs)
    if asr is None:
        raise FileNotFoundError(f"no cached Whisper evidence for {utt.id}")
    ev = gather_whisper(asr, load_audio(utt.audio), list(utt.words))
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, states=ev.states, probs=np.array([p for w in ev.word_probs for p in w], np.float32),
             lengths=np.array([len(w) for w in ev.word_probs], np.int32))  # fmt: skip
    tmp.replace(path)
    return ev


def base_states_for(utt: Utterance, asr=None, layer: int = 0) -> np.ndarray:
    """Whisper *base* encoder states of ``utt`` (frames, 512) float16, cached under
    ``tutor_base/`` (the same own-length window as the tiny.en evidence). ``layer``: the output
    of that encoder layer instead of the last (``asr`` then is the model cut after it, see
    ``whisper_layers``), cached under ``tutor_layers/base_L<layer>/``."""
    from duetto.apps.tutor.whisper_evidence import encoder_states
    from duetto.audio import load_audio
    from duetto.models import cache_dir

    folder = cache_dir() / ("tutor_base" if not layer else f"tutor_layers/base_L{layer}")
    path = folder / f"{utt.id}.npy"
    if path.is_file():
        return np.load(path)
    if asr is None:
        raise FileNotFoundError(f"no cached Whisper base states for {utt.id}")
    folder.mkdir(parents=True, exist_ok=True)
    states, _ = encoder_states(asr, load_audio(utt.audio))
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, states)
    tmp.replace(path)
    return states
