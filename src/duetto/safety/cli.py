"""``duetto safety ...``: watermark detection and marking, voiceprints, PII redaction, fuzzing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from duetto.errors import DuettoError


def register(subparsers) -> None:
    """Add the ``safety`` command group to the ``duetto`` parser."""
    from duetto.safety.cohort import GROUPS

    group = subparsers.add_parser("safety", help="watermark, voiceprints, PII redaction",
                                  description="Trust and safety tools.")  # fmt: skip
    sub = group.add_subparsers(title="safety commands", metavar="COMMAND")
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])

    p = _command(
        sub,
        "detect",
        cmd_detect,
        "does an audio file (or any 1-second window) carry duetto's watermark?",
    )
    p.add_argument("file", help="audio file (wav, flac, mp3, ogg/opus, m4a, webm)")

    p = _command(sub, "mark", cmd_mark, "watermark an audio file (as duetto's TTS does)")
    p.add_argument("input")
    p.add_argument("output", help="output .wav")
    p.add_argument("--model-id", type=int, default=0, help="4-bit model id in the payload (0-15)")
    p.add_argument("--time-bucket", type=int, help="12-bit day bucket (default: today)")

    p = _command(
        sub,
        "enroll",
        cmd_enroll,
        "enrol a speaker's voiceprint from 1 or more utterances (3+ is better)",
    )
    p.add_argument("name")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--store", help="voiceprint store (default $DUETTO_VOICEPRINTS or ~/.local/share/duetto)"
    )
    p.add_argument(
        "--group", choices=GROUPS,
        help="the speaker's group for score normalisation: child (under 12), female or male "
        "(default: guessed from the voice)",
    )  # fmt: skip

    p = _command(sub, "verify", cmd_verify, "is this clip the enrolled human speaker NAME?")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument(
        "--store", help="voiceprint store (default $DUETTO_VOICEPRINTS or ~/.local/share/duetto)"
    )

    p = _command(
        sub, "redact", cmd_redact, "redact personal data (cards, IBANs, phones, e-mails...) in text"
    )
    p.add_argument("text", nargs="?", help="text to redact (default: read stdin line by line)")

    p = _command(
        sub, "fuzz-audio", cmd_fuzz, "fuzz the audio decoder with truncated and bit-flipped files"
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="valid audio files to mutate")
    p.add_argument("--cases", type=int, default=100, help="mutations per file")
    p.add_argument("--seed", type=int, default=0)


def _command(sub, name, func, help_text) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=func)
    return p


def _print(args, data: dict, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def cmd_detect(args) -> int:
    from duetto.safety.watermark import detect_file

    d = detect_file(args.file)
    payload = (
        {"model_id": d.payload.model_id, "time_bucket": d.payload.time_bucket}
        if d.payload
        else None
    )
    data = {"file": args.file, "found": d.found, "confidence": round(d.confidence, 6), "score": d.score,
            "payload": payload, "payload_margin": d.payload_margin, "speed": d.speed, "window_start": d.start}  # fmt: skip
    if d.found:
        text = (f"watermark FOUND (confidence {d.confidence:.4f}, z={d.score:.1f}): model {d.payload.model_id}, "
                f"day bucket {d.payload.time_bucket}; best window at {d.start:.2f} s, speed x{d.speed:.3f}")  # fmt: skip
    else:
        text = f"no watermark (z={d.score:.1f}, below the threshold)"
    _print(args, data, text)
    return 0


def cmd_mark(args) -> int:
    import soundfile as sf

    from duetto.audio import load_audio, write_wav
    from duetto.safety.watermark import Payload, Watermarker

    try:
        rate = sf.info(args.input).samplerate
    except (RuntimeError, sf.LibsndfileError):
        rate = 16_000  # not a libsndfile format: decode at 16 kHz
    audio = load_audio(args.input, rate)
    bucket = Payload.bucket_now() if args.time_bucket is None else args.time_bucket
    payload = Payload(args.model_id, bucket)
    marked = Watermarker(rate, payload).process(audio)
    write_wav(args.output, marked, rate)
    data = {"input": args.input, "output": args.output, "sample_rate": rate,
            "payload": {"model_id": payload.model_id, "time_bucket": payload.time_bucket}}  # fmt: skip
    _print(
        args,
        data,
        f"wrote {args.output} (model {payload.model_id}, day bucket {payload.time_bucket})",
    )
    return 0


def cmd_enroll(args) -> int:
    from duetto.audio import load_audio
    from duetto.safety.voiceprint import VoiceprintStore, enroll

    store = VoiceprintStore(args.store)
    enroll(args.name, [load_audio(f) for f in args.files], store, group=args.group)
    data = {"name": args.name, "utterances": len(args.files), "store": str(store.path)}
    _print(
        args, data, f"enrolled '{args.name}' from {len(args.files)} utterance(s) in {store.path}"
    )
    return 0


def cmd_verify(args) -> int:
    from duetto.audio import load_audio
    from duetto.safety.voiceprint import VoiceprintStore, verify

    r = verify(args.name, load_audio(args.file), VoiceprintStore(args.store))
    data = {"name": r.name, "accepted": r.accepted, "score": round(r.score, 4), "cosine": round(r.cosine, 4),
            "threshold": r.threshold, "synthetic": r.synthetic, "reason": r.reason}  # fmt: skip
    # The two fused systems' own scores, when the fused score was used (docs/trust.md).
    for key in ("centred_cosine", "llr"):
        if getattr(r, key) is not None:
            data[key] = round(getattr(r, key), 4)
    if r.group is not None:
        data["group"] = r.group  # the cohort the scores were normalised against
    verdict = "ACCEPTED" if r.accepted else "REJECTED"
    _print(args, data, f"{verdict}: {r.reason} (score {r.score:.2f}, threshold {r.threshold})")
    return 0 if r.accepted else 1


def cmd_redact(args) -> int:
    from duetto.safety.redact import find_pii, redact

    lines = [args.text] if args.text is not None else [line.rstrip("\n") for line in sys.stdin]
    out = []
    for line in lines:
        spans = find_pii(line)
        out.append(
            {
                "text": redact(line),
                "spans": [{"start": s.start, "end": s.end, "kind": s.kind} for s in spans],
            }
        )
    if args.json:
        print(json.dumps(out if args.text is None else out[0], indent=2, ensure_ascii=False))
    else:
        print("\n".join(o["text"] for o in out))
    return 0


def cmd_fuzz(args) -> int:
    from duetto.safety.hardening import fuzz_decoder

    for f in args.files:
        if not Path(f).is_file():
            raise DuettoError(
                f"audio file not found: {f}", "give existing, valid audio files to mutate"
            )
    r = fuzz_decoder(args.files, args.cases, args.seed)
    data = {"cases": r.cases, "decoded": r.decoded, "rejected": r.rejected, "failures": r.failures,
            "rss_before_mb": round(r.rss_before_mb, 1), "rss_after_mb": round(r.rss_after_mb, 1),
            "seconds": round(r.seconds, 1)}  # fmt: skip
    text = (f"{r.cases} cases: {r.decoded} still decoded, {r.rejected} rejected cleanly, {len(r.failures)} failures; "
            f"RSS {r.rss_before_mb:.0f} -> {r.rss_after_mb:.0f} MB")  # fmt: skip
    if r.failures:
        text += "\n" + "\n".join("  " + f for f in r.failures)
    _print(args, data, text)
    return 1 if r.failures else 0
