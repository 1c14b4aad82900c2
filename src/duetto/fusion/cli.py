"""``duetto fusion ...``: the end-of-turn model, paralinguistic cues and speaking styles."""

from __future__ import annotations

import json
from dataclasses import asdict

from duetto.errors import NoSpeechError


def register(sub) -> None:
    p = sub.add_parser("fusion", help="end of turn from prosody + words; cues and speaking styles")
    fsub = p.add_subparsers(title="fusion commands", metavar="COMMAND")

    e = _cmd(fsub, "eot", cmd_eot, "is the turn over at the end of this recording's speech?")
    e.add_argument("file", help="audio of one user turn (any format)")
    e.add_argument(
        "--transcript", help="the words so far (default: transcribed with the bundled ASR)"
    )
    e.add_argument("--variant", default="late", choices=("late", "gated", "xattn", "audio", "text"))

    c = _cmd(fsub, "cues", cmd_cues, "speech rate, pauses, pitch, loudness, hesitation of one turn")
    c.add_argument("file")
    c.add_argument("--transcript", help="the words (default: transcribed with the bundled ASR)")

    s = _cmd(fsub, "style", cmd_style, "the speaking style a reply calls for; render it with -o")
    s.add_argument("text")
    s.add_argument(
        "--style", help="force a style (neutral, calm, cheerful, apologetic, urgent, brisk)"
    )
    s.add_argument("-o", "--output", help="write the styled speech to this .wav")


def _cmd(sub, name, func, help):
    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=func)
    return p


def _out(args, data: dict, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def _transcript(audio, given: str | None) -> str:
    if given is not None:
        return given
    from duetto.asr import load_asr

    return load_asr().transcribe(audio).text


def cmd_eot(args) -> int:
    from duetto.audio import load_audio
    from duetto.fusion.eot import DECISION_DELAY_S, EndOfTurnModel
    from duetto.fusion.pauses import find_pauses
    from duetto.vad import speech_probabilities

    audio = load_audio(args.file)
    pauses = find_pauses(speech_probabilities(audio))
    if not pauses:
        raise NoSpeechError(
            f"no speech found in {args.file}", "give a recording of someone speaking"
        )
    end = pauses[-1].start
    clip = audio[: int((end + DECISION_DELAY_S) * 16_000)]
    model = EndOfTurnModel(args.variant)
    transcript = _transcript(clip, args.transcript) if model.uses_text else ""
    decision = model.decide(clip, transcript)
    data = {
        "speech_end_s": end,
        "transcript": transcript,
        "probability": round(decision.probability, 4),
        "wait_ms": round(decision.wait_s * 1000),
        "decision_ms": round(decision.seconds * 1000, 1),
    }
    verdict = "over" if decision.probability >= 0.5 else "not over"
    _out(
        args,
        data,
        f"turn {verdict}: p={decision.probability:.2f}, answer after {data['wait_ms']} ms of silence",
    )
    return 0


def cmd_cues(args) -> int:
    from duetto.audio import load_audio
    from duetto.fusion.prosody import analyze_turn, prompt_context, reply_plan

    audio = load_audio(args.file)
    cues = analyze_turn(audio, _transcript(audio, args.transcript))
    plan = reply_plan(cues)
    data = {**cues.to_dict(), "plan": asdict(plan), "prompt_context": prompt_context(cues)}
    lines = [
        f"speech rate {cues.syllables_per_s:.1f} syll/s, pauses {cues.pause_ratio:.0%} "
        f"({cues.long_pauses} long), pitch {cues.pitch_hz:.0f} Hz over {cues.pitch_range_st:.1f} st, "
        f"{cues.loudness_dbfs:.0f} dBFS, {cues.fillers} fillers, {cues.repetitions} repetitions",
        f"for the LLM: {data['prompt_context'] or '(nothing stands out)'}",
        f"reply style: {plan.style}",
    ]
    _out(args, data, "\n".join(lines))
    return 0


def cmd_style(args) -> int:
    from duetto.fusion.style import get_style, style_for, tts_speed

    style = get_style(args.style) if args.style else style_for(args.text)
    data = {**asdict(style), "tts_speed": round(tts_speed(style), 3)}
    text = f"{style.name}: rate {style.rate:.2f}, pitch {style.pitch_st:+.1f} st, volume {style.gain_db:+.1f} dB"
    if args.output:
        import numpy as np

        from duetto.audio import write_wav
        from duetto.fusion.style import render
        from duetto.tts import load_tts

        tts = load_tts()
        audio = np.concatenate(list(render(tts, args.text, style)))
        write_wav(args.output, audio, tts.sample_rate)
        data["output"] = args.output
        text += f"\nwrote {args.output} ({len(audio) / tts.sample_rate:.2f} s)"
    _out(args, data, text)
    return 0
