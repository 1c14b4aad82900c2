"""``duetto data ...`` (augment, dtw, align) and ``duetto eval ...`` (asr robustness)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from duetto.errors import DuettoError


def register(sub) -> None:
    """Add the ``data`` and ``eval`` command groups to the main parser's subparsers."""
    data = sub.add_parser("data", help="data toolkit: augmentation, DTW and forced alignment")
    data_sub = data.add_subparsers(title="data commands", metavar="COMMAND")
    data.set_defaults(func=lambda args: _group_help(data))

    p = _command(data_sub, "augment", cmd_augment, "write an augmented copy of a speech manifest")
    p.add_argument("manifest", help="input .jsonl (id, audio, text, speaker, ...)")
    p.add_argument("out", help="output folder: audio/, manifest.jsonl (and features/)")
    p.add_argument(
        "--noise", help="white, pink, brown, babble, a folder of noise files, or a comma list"
    )
    p.add_argument(
        "--snr", help="SNR in dB on active speech: 5, or a range 0..20 drawn per utterance"
    )
    p.add_argument("--speed", help="Kaldi-style speed (tempo and pitch): 0.9, or a range 0.9..1.1")
    p.add_argument("--tempo", help="tempo only (pitch kept): 1.2, or a range 0.8..1.2")
    p.add_argument(
        "--specaugment", action="store_true", help="also write SpecAugment-masked log-mels (.npy)"
    )
    p.add_argument(
        "--babble-manifest",
        help="speech manifest babble is made from (default: train.jsonl beside MANIFEST)",
    )
    p.add_argument("--seed", type=int, default=0, help="same seed, same output (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = _command(data_sub, "dtw", cmd_dtw, "DTW-align two utterances of the same text on MFCCs")
    p.add_argument("a", help="first audio (e.g. the learner)")
    p.add_argument("b", help="second audio (e.g. the reference voice)")
    p.add_argument("--png", help="write a picture of the path over both spectrograms")
    p.add_argument("--path", action="store_true", help="print the whole path (always in --json)")
    p.add_argument("--no-trim", action="store_true", help="keep leading/trailing silence")

    p = _command(
        data_sub, "align", cmd_align, "forced alignment of a text to audio: words and phones"
    )
    p.add_argument("audio")
    p.add_argument("--text", required=True, help="the words spoken")
    p.add_argument("--textgrid", help="write a Praat TextGrid here")
    p.add_argument("--srt", help="write SRT subtitles here")
    p.add_argument("--phones", action="store_true", help="print phones too")

    ev = sub.add_parser("eval", help="measure the engine: ASR/VAD robustness to noise, by group")
    ev_sub = ev.add_subparsers(title="eval commands", metavar="COMMAND")
    ev.set_defaults(func=lambda args: _group_help(ev))
    p = _command(
        ev_sub, "asr", cmd_eval_asr, "WER, RTF and VAD miss/false alarms per noise condition"
    )
    p.add_argument("manifest")
    p.add_argument(
        "--snr", default="clean", help="comma list of 'clean' and dB values (default clean)"
    )
    p.add_argument(
        "--noise", default="babble,white", help="comma list of noises (default babble,white)"
    )
    p.add_argument("--by", default="", help="split figures by: age, gender, speaker (comma list)")
    p.add_argument("--limit", type=int, help="at most N utterances, spread over speakers")
    p.add_argument(
        "--babble-manifest",
        help="speech manifest for babble (default: train.jsonl beside MANIFEST)",
    )
    p.add_argument(
        "--denoise",
        choices=("none", "noisereduce"),
        default="none",
        help="noise suppression front end",
    )
    p.add_argument(
        "--adaptive-vad", action="store_true", help="VAD threshold adapted to the noise floor"
    )
    p.add_argument("--beam-size", type=int, default=1, help="ASR beam size (default 1, greedy)")
    p.add_argument(
        "--min-word-prob",
        type=float,
        default=0.0,
        help="drop recognized words below this probability (e.g. 0.2)",
    )
    p.add_argument(
        "--loop-guard", action="store_true", help="re-decode repetition loops at higher temperature"
    )
    p.add_argument(
        "--min-word-level",
        type=float,
        default=None,
        help="drop words this many dB under the utterance's loud level (e.g. -10)",
    )
    p.add_argument(
        "--filter-below-snr",
        type=float,
        default=None,
        help="word filters only on audio whose estimated SNR is under this many dB (e.g. 20)",
    )
    p.add_argument(
        "--word-filter",
        default=None,
        help="learned word filter: 'learned' (shipped) or an npz path (asr.word_filter)",
    )
    p.add_argument(
        "--word-filter-threshold",
        type=float,
        default=None,
        help="its threshold on P(the word is the speaker's) (default: the npz's own)",
    )
    p.add_argument(
        "--noisy-beam-size",
        type=int,
        default=None,
        help="beam for audio under --filter-below-snr (asr.noisy_beam_size; e.g. 5)",
    )
    p.add_argument(
        "--noisy-speeds",
        default=None,
        help="also decode audio under --filter-below-snr at these speeds and keep the medoid "
        "(asr.noisy_speeds; e.g. 0.95,1.05,0.9,1.1)",
    )
    p.add_argument(
        "--noisy-lm",
        default=None,
        help="choose among the --noisy-speeds decodings and their beams' best with this "
        "language model instead of the medoid (asr.noisy_lm; 'bundled' for Gemma, or a GGUF)",
    )
    p.add_argument(
        "--noisy-second-model",
        default=None,
        help="also decode the --noisy-speeds playbacks with this model and keep the medoid of "
        "both models' decodings (asr.noisy_second_model; e.g. bundled-base-robust)",
    )
    p.add_argument("--model", default="bundled", help="ASR model (asr.model; e.g. base)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--png", help="write WER-vs-SNR curves here")
    p.add_argument("--results", help="write per-utterance results (JSONL) here")
    p.add_argument("--no-progress", action="store_true")


def _command(sub, name, func, help_text) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=func)
    return p


def _group_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _print(args, data, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def _default_babble(manifest: str, given: str | None) -> str | None:
    if given:
        return given
    beside = Path(manifest).parent / "train.jsonl"
    return str(beside) if beside.is_file() else None


def _warn(problem) -> None:
    print(f"duetto: skipped {problem}", file=sys.stderr)


def cmd_augment(args) -> int:
    from duetto.data.augment import AugmentOptions, parse_range, run_augment

    noises = tuple(n.strip() for n in (args.noise or "").split(",") if n.strip())
    options = AugmentOptions(
        noise=noises,
        snr=parse_range(args.snr, "SNR") if args.snr else None,
        speed=parse_range(args.speed, "speed") if args.speed else None,
        tempo=parse_range(args.tempo, "tempo") if args.tempo else None,
        specaugment=args.specaugment,
        seed=args.seed,
        babble_manifest=_default_babble(args.manifest, args.babble_manifest)
        if "babble" in noises
        else None,
    )
    report = run_augment(
        args.manifest,
        args.out,
        options,
        progress=not args.no_progress and not args.json,
        on_problem=_warn,
    )
    data = {
        "manifest": str(report.manifest),
        "written": report.written,
        "kept_existing": report.skipped_existing,
        "skipped": len(report.problems),
        "problems": [str(p) for p in report.problems],
    }
    text = (
        f"wrote {report.written} utterance(s), kept {report.skipped_existing} already done; "
        f"manifest {report.manifest}\n{len(report.problems)} line(s) skipped"
    )
    _print(args, data, text)
    return 0


def cmd_dtw(args) -> int:
    from duetto.audio import load_audio
    from duetto.data.dtw import dtw_align, plot_dtw

    a, b = load_audio(args.a), load_audio(args.b)
    result = dtw_align(a, b, trim_silence=not args.no_trim)
    png = (
        plot_dtw(a, b, result, args.png, labels=(Path(args.a).name, Path(args.b).name))
        if args.png
        else None
    )
    data = result.to_dict() | {"png": str(png) if png else None}
    lines = [
        f"normalized distance {result.distance:.4f} over a path of {len(result.path)} steps "
        f"({result.frames_a} x {result.frames_b} frames of 10 ms)",
    ]
    if args.path:
        lines += [f"{ta:7.2f} {tb:7.2f}" for ta, tb in result.seconds_path]
    if png:
        lines.append(f"wrote {png}")
    _print(args, data, "\n".join(lines))
    return 0


def cmd_align(args) -> int:
    from duetto.audio import load_audio
    from duetto.data.align import align, to_srt, to_textgrid

    result = align(load_audio(args.audio), args.text)
    if args.textgrid:
        to_textgrid(result, args.textgrid)
    if args.srt:
        to_srt(result, args.srt)
    lines = []
    for w in result.words:
        lines.append(
            f"{w.start:7.2f} {w.end:7.2f}  {w.word}" + ("  (not in dictionary)" if w.oov else "")
        )
        if args.phones:
            lines += [f"{p.start:11.2f} {p.end:7.2f}    {p.phone}" for p in w.phones]
    lines += [f"wrote {f}" for f in (args.textgrid, args.srt) if f]
    _print(args, result.to_dict(), "\n".join(lines))
    return 0


def cmd_eval_asr(args) -> int:
    from duetto.asr.whisper import noisy_speeds
    from duetto.data.evaluate import (
        EvalConfig,
        Evaluator,
        format_table,
        parse_conditions,
        plot_wer_vs_snr,
        summarize,
    )
    from duetto.data.manifest import read_manifest, subset

    by = [k.strip() for k in args.by.split(",") if k.strip()]
    for key in by:
        if key not in ("age", "gender", "speaker"):
            raise DuettoError(f"cannot split by '{key}'", "use age, gender or speaker")
    if args.limit is not None and args.limit < 1:
        raise DuettoError("--limit must be at least 1")
    conditions = parse_conditions(args.snr, args.noise)
    babble = _default_babble(args.manifest, args.babble_manifest)
    if any(c.noise == "babble" for c in conditions) and babble is None:
        raise DuettoError(
            "babble needs a speech manifest of other speakers", "pass --babble-manifest train.jsonl"
        )
    manifest = read_manifest(args.manifest)
    for p in manifest.problems:
        _warn(p)
    utts = subset(manifest, args.limit)
    if not utts:
        raise DuettoError(f"no usable utterances in {args.manifest}", "check the audio paths")
    config = EvalConfig(
        denoise=args.denoise,
        adaptive_vad=args.adaptive_vad,
        beam_size=args.beam_size,
        min_word_prob=args.min_word_prob,
        loop_guard=args.loop_guard,
        min_word_level_db=args.min_word_level,
        filter_below_snr_db=args.filter_below_snr,
        word_filter=args.word_filter,
        word_filter_threshold=args.word_filter_threshold,
        noisy_beam_size=args.noisy_beam_size,
        noisy_speeds=noisy_speeds(args.noisy_speeds) or None,
        noisy_lm=args.noisy_lm,
        noisy_second_model=args.noisy_second_model,
        model=args.model,
    )
    evaluator = Evaluator(config, babble_manifest=babble, seed=args.seed)
    results, problems = evaluator.run(
        utts, conditions, progress=not args.no_progress and not args.json
    )
    for p in problems:
        _warn(p)
    summaries = summarize(results, by)
    png = None
    if args.png:
        png = plot_wer_vs_snr({config.label: summaries}, args.png)
    if args.results:
        Path(args.results).write_text("".join(json.dumps(r.to_dict()) + "\n" for r in results))
    skipped = len(manifest.problems) + len(problems)
    data = {
        "config": config.label,
        "utterances": len(utts),
        "summary": [s.to_dict() for s in summaries],
        "skipped": skipped,
        "png": str(png) if png else None,
    }
    text = f"{len(utts)} utterance(s), {config.label}\n{format_table(summaries)}\n{skipped} skipped"
    if png:
        text += f"\nwrote {png}"
    _print(args, data, text)
    return 0
