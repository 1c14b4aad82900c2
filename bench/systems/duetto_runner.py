"""Runs duetto over a latency corpus at real-time pace; one process per configuration.

    python bench/systems/duetto_runner.py --corpus DIR --out result.json [--llm-url URL]
        [--set turn.end_silence_ms=300 ...] [--t0 SPAWN_TIME]

Writes when each reply's first audio sample was played (audio time of the conversation), the
engine's own per-stage metrics, CPU seconds while feeding, peak RSS and cold start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path

START = time.time()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--llm-url")
    parser.add_argument("--set", action="append", default=[], help="section.key=value")
    parser.add_argument(
        "--t0", type=float, default=None, help="time.time() when the process was spawned"
    )
    args = parser.parse_args()

    from duetto.audio import load_audio
    from duetto.config import load_settings
    from duetto.talk import Engine, run_session

    overrides = dict(item.split("=", 1) for item in args.set)
    if args.llm_url:
        overrides["llm.url"] = args.llm_url
    settings = load_settings(None, overrides)
    engine = Engine.load(settings)
    corpus = json.loads((Path(args.corpus) / "corpus.json").read_text())

    async def warm():
        engine.session()  # loads and warms the LLM (prompt prefix cache)

    asyncio.run(warm())
    ready_s = time.time() - (args.t0 or START)
    cpu0 = _cpu()
    conversations = []
    for conv in corpus["conversations"]:
        audio = load_audio(Path(args.corpus) / conv["wav"])

        async def one(audio=audio):
            return await run_session(engine.session(), audio, realtime=True)

        result = asyncio.run(one())
        conversations.append(
            {
                "id": conv["id"],
                "reply_starts": [t.agent_start for t in result.turns if t.agent_start is not None],
                "reply_texts": [t.agent_text for t in result.turns if t.agent_start is not None],
                "user_transcripts": [t.user_text for t in result.turns],
                "metrics": [t.to_dict() for t in result.turns],
            }
        )
        print(f"{conv['id']}: {len(result.turns)} turns", file=sys.stderr, flush=True)
    out = {
        "system": "duetto",
        "settings": overrides,
        "ready_s": round(ready_s, 3),
        "cpu_s": round(_cpu() - cpu0, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "conversations": conversations,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
