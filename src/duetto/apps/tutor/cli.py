"""``duetto tutor score|grammar|practice|report``: the spoken-English tutor's commands."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from duetto.errors import DuettoError


def register(sub) -> None:
    tutor = sub.add_parser("tutor", help="spoken-English tutor: pronunciation, grammar, practice, reports",
                           description="Spoken-English tutor: pronunciation scoring, grammar feedback, "
                           "practice sessions and learner reports.")  # fmt: skip
    tsub = tutor.add_subparsers(title="tutor commands", metavar="COMMAND")
    tutor.set_defaults(func=lambda args: tutor.print_help() or 2)

    p = _command(
        tsub, "score", cmd_score, "score a recording against the sentence the learner read"
    )
    p.add_argument(
        "--audio", required=True, help="the learner's recording (any format, rate, channels)"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the sentence the learner was asked to read")
    src.add_argument("--free", action="store_true", help="free speech: the transcript is the reference, "
                     "grammar feedback is added")  # fmt: skip
    p.add_argument("--html", help="also write an HTML page of the result here")
    p.add_argument(
        "--lexicon", help="extra CMU-style lexicon (WORD PH ON ES per line), looked up first"
    )
    p.add_argument("--learner", help="store the attempt in this learner's progress")
    p.add_argument("--db", help="progress database (default under ~/.cache/duetto/tutor)")

    p = _command(tsub, "grammar", cmd_grammar, "correct a sentence and explain each edit")
    p.add_argument("text", nargs="+", help="the sentence (quote it)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="n-gram edits alone, without the bundled Gemma 3 270M judging the unsure ones "
        "(milliseconds a sentence, fewer edits right)",
    )
    p.add_argument("--rerank", action="store_true", help=argparse.SUPPRESS)  # now the default
    p.add_argument(
        "--llm-url",
        help="let an OpenAI-compatible chat server rewrite the sentence, "
        "e.g. http://localhost:8080/v1 (the embedded corrector is used without it)",
    )
    p.add_argument("--llm-model", default="", help="model name at --llm-url")  # fmt: skip

    p = _command(tsub, "practice", cmd_practice, "voice practice: repeat sentences chosen for you")
    p.add_argument("--learner", required=True, help="whose progress to use and store")
    p.add_argument("--rounds", type=int, default=5, help="sentences in this session (default 5)")
    p.add_argument("--recordings", nargs="+", help="use these recordings instead of the microphone")
    p.add_argument("--db", help="progress database (default under ~/.cache/duetto/tutor)")
    p.add_argument("--seed", type=int, help="random seed for sentence choice")

    p = _command(tsub, "report", cmd_report, "a learner's progress report as an HTML page")
    p.add_argument("--learner", required=True)
    p.add_argument("-o", "--output", required=True, help="the .html file to write")
    p.add_argument("--db", help="progress database (default under ~/.cache/duetto/tutor)")


def _command(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=func)
    return p


def _print(args, data: dict, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def cmd_score(args) -> int:
    from duetto.apps.tutor.practice import summary
    from duetto.apps.tutor.report import assessment_html
    from duetto.apps.tutor.scoring import Scorer
    from duetto.audio import load_audio

    if args.lexicon and not Path(args.lexicon).is_file():
        raise DuettoError(
            f"lexicon file not found: {args.lexicon}", "give a CMU-style lexicon file"
        )
    audio = load_audio(args.audio)
    result = Scorer(lexicon_path=args.lexicon).score(audio, None if args.free else args.text)
    data = result.to_dict()
    text = summary(result)
    if args.free:
        from duetto.apps.tutor.grammar_lm import default_corrector

        fix = default_corrector().correct(result.transcript)
        data["grammar"] = _correction_dict(fix)
        text += "\n" + _correction_text(fix)
    if args.learner:
        from duetto.apps.tutor.progress import Progress

        progress = Progress(args.db)
        progress.record(
            progress.start_session(args.learner),
            result.reference,
            0,
            data,
            str(Path(args.audio).resolve()),
        )
    if args.html:
        Path(args.html).write_text(assessment_html(data), encoding="utf-8")
        text += f"\nwrote {args.html}"
    words = "  ".join(
        f"{w.word.lower()}:{'-' if w.accuracy is None else w.accuracy}" for w in result.words
    )
    _print(args, data, f"{result.reference}\n  words: {words}\n{text}")
    return 0


def _correction_dict(fix) -> dict:
    return {"text": fix.text, "corrected": fix.corrected,
            "edits": [e.__dict__ for e in fix.edits], "seconds": round(fix.seconds, 4)}  # fmt: skip


def _correction_text(fix) -> str:
    if not fix.edits:
        return f"grammar: no corrections for “{fix.text}”"
    lines = [f"grammar: {fix.corrected}"]
    for e in fix.edits:
        lines.append(
            f"  {e.original or '(insert)'} → {e.correction or '(delete)'}: {e.explanation}"
        )
    return "\n".join(lines)


def cmd_grammar(args) -> int:
    from duetto.apps.tutor import grammar

    text = " ".join(args.text).strip()
    if not text:
        raise DuettoError(
            "no text to correct", 'give a sentence: duetto tutor grammar "She go to school."'
        )
    if args.llm_url:
        from duetto.apps.tutor.grammar_llm import ChatCorrector

        fix = ChatCorrector(args.llm_url, args.llm_model).correct(text)
    elif args.fast:
        fix = grammar.correct(text)
    else:
        from duetto.apps.tutor.grammar_lm import default_corrector

        fix = default_corrector().correct(text)
    _print(args, _correction_dict(fix), _correction_text(fix))
    return 0


def cmd_practice(args) -> int:
    from duetto.apps.tutor import practice
    from duetto.apps.tutor.progress import Progress

    if args.rounds < 1:
        raise DuettoError("--rounds must be at least 1")
    if args.recordings:
        missing = [p for p in args.recordings if not Path(p).is_file()]
        if missing:
            raise DuettoError(f"recording not found: {missing[0]}", "give existing audio files")
        io = practice.FileIO(args.recordings)
    else:
        io = practice.DeviceIO()
    rng = random.Random(args.seed) if args.seed is not None else None
    quiet = args.json
    rounds = practice.run(args.learner, io, rounds=args.rounds, progress=Progress(args.db), rng=rng,
                          show=(lambda _t: None) if quiet else print)  # fmt: skip
    data = {"learner": args.learner, "rounds": [
        {"sentence": r.sentence, "level": r.level, "attempt": r.attempt_id,
         "assessment": r.assessment.to_dict() if r.assessment else None} for r in rounds]}  # fmt: skip
    if quiet:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(f"\n{len(rounds)} sentences practised; progress saved for {args.learner}.")
    return 0


def cmd_report(args) -> int:
    from duetto.apps.tutor.progress import Progress
    from duetto.apps.tutor.report import learner_report

    progress = Progress(args.db)
    attempts = progress.attempts(args.learner)
    Path(args.output).write_text(learner_report(args.learner, attempts), encoding="utf-8")
    data = {"learner": args.learner, "attempts": len(attempts), "output": args.output}
    _print(args, data, f"wrote {args.output} ({len(attempts)} attempts)")
    return 0
