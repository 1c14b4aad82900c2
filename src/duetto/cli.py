"""The ``duetto`` command. Engine commands live here; applications and tools register their own
subcommand groups through :data:`COMMAND_MODULES` (each module defines ``register(subparsers)``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

from duetto.errors import DuettoError

# Subcommand groups outside the engine: the engine never imports from them, they import it.
COMMAND_MODULES = (
    "duetto.server.cli",
    "duetto.data.cli",
    "duetto.safety.cli",
    "duetto.fusion.cli",
    "duetto.apps.bank.cli",
    "duetto.apps.tutor.cli",
    "duetto.bench_cli",
)

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except DuettoError as exc:
        print(f"duetto: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="duetto", description="Streaming voice dialogue on a laptop CPU."
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _register_engine_commands(sub)
    for name in COMMAND_MODULES:
        module = _optional_module(name)
        if module is not None:
            module.register(sub)
    return parser


def _optional_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            return None  # that part of duetto is not in this build
        raise


def add_settings_flags(p: argparse.ArgumentParser) -> None:
    """Flags that override settings; shared by every command that runs the engine."""
    g = p.add_argument_group("models and settings")
    g.add_argument("--config", help="TOML settings file (default ./duetto.toml or $DUETTO_CONFIG)")
    g.add_argument(
        "--asr-model",
        help="'bundled', 'bundled-base', 'bundled-robust', 'bundled-bank', a faster-whisper name "
        "or folder",
    )
    g.add_argument("--language", help="spoken language code (multilingual ASR models only)")
    g.add_argument("--llm-model", help="'bundled', a .gguf path, or the model name at --llm-url")
    g.add_argument("--llm-url", help="OpenAI-compatible server base URL, e.g. http://host:8080/v1")
    g.add_argument("--tts", dest="tts_backend", choices=("piper", "espeak"), help="TTS backend")
    g.add_argument("--voice", help="Piper voice name or .onnx path (espeak: a language code)")
    g.add_argument("--speed", type=float, help="speaking rate, 1.0 = normal")
    g.add_argument("--end-silence-ms", type=int, help="silence that ends the user's turn")
    g.add_argument("--no-barge-in", action="store_true", help="the user cannot interrupt the agent")


def settings_from_args(args: argparse.Namespace):
    from duetto.config import load_settings

    llm_url = getattr(args, "llm_url", None)
    llm_model = getattr(args, "llm_model", None)
    overrides = {
        "asr.model": getattr(args, "asr_model", None),
        "asr.language": getattr(args, "language", None),
        "llm.url": llm_url,
        "llm.remote_model" if llm_url else "llm.model": llm_model,
        "tts.backend": getattr(args, "tts_backend", None),
        "tts.voice": getattr(args, "voice", None),
        "tts.speed": getattr(args, "speed", None),
        "turn.end_silence_ms": getattr(args, "end_silence_ms", None),
        "turn.barge_in": False if getattr(args, "no_barge_in", False) else None,
    }
    return load_settings(getattr(args, "config", None), overrides)


def _command(
    sub, name: str, func: Callable, help: str, settings: bool = True
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    if settings:
        add_settings_flags(p)
    p.set_defaults(func=func)
    return p


def _register_engine_commands(sub) -> None:
    p = _command(
        sub, "transcribe", cmd_transcribe, "transcribe an audio file (any format, rate, channels)"
    )
    p.add_argument("file")
    p.add_argument("--words", action="store_true", help="word timestamps")

    p = _command(sub, "say", cmd_say, "synthesize speech to a WAV file, streamed as it is made")
    p.add_argument("text")
    p.add_argument("-o", "--output", required=True, help="output .wav")

    p = _command(
        sub, "chat", cmd_chat, "text conversation with the LLM (same memory and prompt as voice)"
    )
    p.add_argument(
        "--message", "-m", action="append", help="send this message instead of reading stdin"
    )

    p = _command(
        sub, "talk", cmd_talk, "voice dialogue: from a file at real-time pace, or the microphone"
    )
    p.add_argument("--input", "-i", help="user audio file, fed as if from a microphone")
    p.add_argument("--output", "-o", help="write the agent's audio on the same timeline (.wav)")
    p.add_argument(
        "--fast", action="store_true", help="feed the file as fast as possible (not real time)"
    )

    p = _command(
        sub, "demo", cmd_demo, "the main job on the embedded models: a spoken two-turn dialogue"
    )
    p.add_argument("--out", default="demo-out", help="folder for the WAV files")


def _print(args, data: dict, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def cmd_transcribe(args) -> int:
    from duetto.asr import load_asr
    from duetto.audio import load_audio
    from duetto.vad import require_speech

    settings = settings_from_args(args)
    asr = load_asr(settings.asr)  # a wrong model name is reported before the file is read
    audio = load_audio(args.file)
    require_speech(audio, args.file)
    result = asr.transcribe(audio, words=args.words)
    data = {
        "text": result.text,
        "language": result.language,
        "duration": round(result.duration, 3),
        "rtf": round(result.rtf, 3),
    }
    if args.words:
        data["words"] = [
            {"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
            for w in result.words
        ]
    lines = [result.text]
    if args.words:
        lines += [f"{w.start:7.2f} {w.end:7.2f}  {w.word}" for w in result.words]
    _print(args, data, "\n".join(lines))
    return 0


def cmd_say(args) -> int:
    from duetto.tts.stream import speak_to_file

    settings = settings_from_args(args)
    info = speak_to_file(
        args.text, args.output, settings.tts, language=getattr(args, "language", None)
    )
    _print(
        args,
        info,
        f"wrote {info['path']} ({info['seconds']:.2f} s, first audio after {info['first_audio_ms']:.0f} ms)",
    )
    return 0


def cmd_chat(args) -> int:
    from duetto.dialogue import Conversation

    settings = settings_from_args(args)
    conversation = Conversation.from_settings(settings)
    messages = args.message or None
    interactive = messages is None and sys.stdin.isatty()
    replies = []
    source = messages if messages is not None else stdin_lines(interactive)
    for line in source:
        if not line.strip():
            continue
        reply = conversation.reply_text(line)
        replies.append({"user": line, "agent": reply})
        if not args.json:
            print(reply if not interactive else f"duetto: {reply}", flush=True)
    if args.json:
        print(json.dumps(replies, indent=2, ensure_ascii=False))
    return 0


def stdin_lines(interactive: bool):
    """Lines typed on stdin (with a 'you: ' prompt when interactive), until end of input."""
    while True:
        if interactive:
            print("you: ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return
        yield line.rstrip("\n")


def cmd_talk(args) -> int:
    from duetto.talk import talk_file, talk_live

    settings = settings_from_args(args)
    if args.input:
        result = talk_file(
            args.input, settings, output=args.output, realtime=not args.fast, show=not args.json
        )
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    return talk_live(settings, show=not args.json)


def cmd_demo(args) -> int:
    from duetto.talk import run_demo

    settings = settings_from_args(args)
    result = run_demo(settings, Path(args.out), show=not args.json)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
