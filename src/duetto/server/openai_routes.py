"""OpenAI-compatible HTTP endpoints: transcriptions, speech, chat completions and models.

Each route validates what the client sent, runs one engine stage (ASR, TTS or the dialogue
responder) and shapes the answer like OpenAI does, so the official clients work unchanged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from duetto.audio import load_audio
from duetto.errors import DuettoError, LLMConnectionError
from duetto.server import catalog, transcripts
from duetto.server.audio_out import FORMATS, StreamEncoder, content_type
from duetto.server.errors import StageTimeoutError, error_payload
from duetto.server.state import ServerState, get_state
from duetto.server.threads import iterate_in_thread


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error, in OpenAI's shape (duetto.server.errors)."""

    error: ErrorDetail


ERRORS = {
    "4XX": {"model": ErrorResponse, "description": "a request the server cannot serve"},
    "5XX": {"model": ErrorResponse, "description": "a stage failed or timed out"},
}
router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], responses=ERRORS)


def _names(kind: str) -> dict:
    """The model names of ``kind``, listed in the OpenAPI schema (others get a 404)."""
    return {"enum": list(catalog.MODEL_IDS[kind])}


# Longest text /v1/audio/speech accepts, as OpenAI does.
MAX_SPEECH_CHARS = 4096
# Most tokens a chat completion may ask for: the bundled model answers in a sentence or two.
MAX_COMPLETION_TOKENS = 1024


# ----------------------------------------------------------------------------- transcriptions
@router.post("/audio/transcriptions", summary="Transcribe audio (OpenAI-compatible)")
async def create_transcription(
    request: Request,
    file: Annotated[UploadFile, File(description="audio: wav, flac, ogg/opus, mp3, m4a or webm")],
    model: Annotated[
        str,
        Form(
            description="duetto-asr, or an OpenAI name such as whisper-1",
            json_schema_extra=_names(catalog.TRANSCRIPTION),
        ),
    ],
    language: Annotated[str | None, Form(description="ISO-639-1 code")] = None,
    prompt: Annotated[str | None, Form(description="text that guides spelling and style")] = None,
    response_format: Annotated[
        Literal["json", "text", "srt", "vtt", "verbose_json"], Form()
    ] = "json",
    temperature: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0,
    timestamp_granularities: Annotated[
        list[Literal["word", "segment"]] | None,
        Form(alias="timestamp_granularities[]", description="word and/or segment"),
    ] = None,
    stream: Annotated[bool, Form(description="server-sent events as text is recognized")] = False,
):
    state = get_state(request)
    config = state.config
    catalog.check_model(state.settings, model, catalog.TRANSCRIPTION)
    _check_language(language)
    data = await file.read()
    audio = await _within(
        config.asr_timeout_s,
        "decoding the audio",
        run_in_threadpool(
            load_audio, data, name=_upload_name(file.filename), max_seconds=config.max_audio_s
        ),
    )
    asr = state.engine.asr
    granularities = set(timestamp_granularities or ())
    options = {"prompt": prompt or None, "language": language or None, "temperature": temperature}
    if stream:
        return StreamingResponse(
            _transcription_events(state, asr, audio, options), media_type="text/event-stream"
        )
    # Timestamps make Whisper predict timing tokens; only ask for them where they are shown.
    timed = response_format in ("srt", "vtt", "verbose_json")
    started = time.perf_counter()
    result = await _within(
        config.asr_timeout_s,
        "speech recognition",
        run_in_threadpool(asr.transcribe, audio, words=timed, **options),
    )
    state.metrics.observe_stage("asr_http", time.perf_counter() - started)
    if response_format == "text":
        return PlainTextResponse(result.text + "\n")
    if response_format == "srt":
        return PlainTextResponse(transcripts.to_srt(result))
    if response_format == "vtt":
        return PlainTextResponse(transcripts.to_vtt(result), media_type="text/vtt")
    if response_format == "verbose_json":
        return transcripts.to_verbose_json(result, granularities)
    return transcripts.to_json(result)


async def _transcription_events(
    state: ServerState, asr, audio, options: dict
) -> AsyncIterator[str]:
    def pieces() -> Iterator[str]:
        prompt = options["prompt"]
        for piece in transcripts.stream_pieces(audio):
            started = time.perf_counter()
            text = asr.transcribe(piece, **{**options, "prompt": prompt}).text
            state.metrics.observe_stage("asr_http", time.perf_counter() - started)
            if text:
                prompt = text  # the previous phrase guides the next, as Whisper does internally
                yield text

    parts: list[str] = []
    try:
        async for text in iterate_in_thread(
            pieces, state.config.asr_timeout_s, "speech recognition"
        ):
            delta = text if not parts else " " + text
            parts.append(text)
            yield _sse({"type": "transcript.text.delta", "delta": delta})
    except Exception as exc:  # noqa: BLE001 - headers are sent: the error goes in the stream
        yield _sse(_stream_error(state, "/v1/audio/transcriptions", exc))
        return
    yield _sse({"type": "transcript.text.done", "text": " ".join(parts)})


async def _within(seconds: float, stage: str, work):
    """``await work``, or a 504 naming ``stage`` after ``seconds`` (its thread runs on, its
    result unused: Python cannot stop a thread, but the client is not left hanging)."""
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError:
        raise StageTimeoutError(
            f"{stage} took longer than {seconds:g} s", "send shorter audio"
        ) from None


def _upload_name(filename: str | None) -> str:
    """How errors name an upload: its base name only, at most 100 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1][:100]
    return f"uploaded file '{name}'" if name else "the uploaded file"


def _check_language(code: str | None) -> None:
    if not code:
        return
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES as known
    except ImportError:  # a faster-whisper without the table: let the model decide
        return
    if code not in known:
        raise DuettoError(
            f"unknown language '{code}'", "give an ISO-639-1 code such as en, de, fr, es"
        )


# ----------------------------------------------------------------------------- speech
class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(
        description="duetto-tts, or an OpenAI name such as tts-1",
        json_schema_extra=_names(catalog.SPEECH),
    )
    input: str = Field(min_length=1, max_length=MAX_SPEECH_CHARS, description="text to speak")
    voice: str = Field(description="a voice from the 404 list; OpenAI's names use the default")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = Field(None, description="accepted and ignored by duetto's voices")


@router.post(
    "/audio/speech",
    summary="Synthesize speech, streamed as it is made (OpenAI-compatible)",
    response_class=Response,
)
async def create_speech(body: SpeechRequest, request: Request):
    from duetto.tts import load_tts

    state = get_state(request)
    catalog.check_model(state.settings, body.model, catalog.SPEECH)
    if not body.input.strip():
        raise DuettoError("'input' holds no text to speak", "send some words")
    tts = await run_in_threadpool(load_tts, catalog.tts_settings_for(state.settings, body.voice))
    encoder = StreamEncoder(body.response_format, tts.sample_rate)
    started = time.perf_counter()
    chunks = aiter(
        iterate_in_thread(
            lambda: tts.stream(body.input, speed=body.speed),
            state.config.tts_timeout_s,
            "speech synthesis",
        )
    )
    # The first chunk before the headers: a failing or stuck voice gets a proper error status.
    first = await anext(chunks, None)
    state.metrics.observe_stage("tts_first_audio_http", time.perf_counter() - started)

    async def audio() -> AsyncIterator[bytes]:
        if first is not None:
            yield encoder.feed(first)
            async for chunk in chunks:
                data = encoder.feed(chunk)
                if data:
                    yield data
        tail = encoder.finish()
        if tail:
            yield tail

    return StreamingResponse(
        audio(),
        media_type=content_type(body.response_format),
        headers={"X-Sample-Rate": str(_output_rate(body.response_format, tts.sample_rate))},
    )


def _output_rate(fmt: str, voice_rate: int) -> int:
    return FORMATS[fmt][3] or voice_rate


# ----------------------------------------------------------------------------- chat
class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(json_schema_extra=_names(catalog.CHAT))
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=MAX_COMPLETION_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_COMPLETION_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    stream_options: dict | None = None


@router.post("/chat/completions", summary="Chat with the agent's LLM (OpenAI-compatible)")
async def create_chat_completion(body: ChatRequest, request: Request):
    state = get_state(request)
    catalog.check_model(state.settings, body.model, catalog.CHAT)
    conversation, user_text = await run_in_threadpool(_conversation_for, state, body)
    reply_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(
            _chat_chunks(state, body, conversation, user_text, reply_id, created, include_usage),
            media_type="text/event-stream",
        )
    started = time.perf_counter()
    clauses = [
        c
        async for c in iterate_in_thread(
            lambda: conversation.respond(user_text), state.config.llm_timeout_s, "the LLM"
        )
    ]
    _observe_llm(state, conversation, started)
    if conversation.last_error:
        raise LLMConnectionError(conversation.last_error)
    reply = " ".join(clauses)
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(conversation, body, reply),
    }


async def _chat_chunks(
    state, body: ChatRequest, conversation, user_text, reply_id, created, include_usage
) -> AsyncIterator[str]:
    def chunk(delta: dict, finish: str | None = None) -> str:
        return _sse(
            {
                "id": reply_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    clauses: list[str] = []
    started = time.perf_counter()
    try:
        async for clause in iterate_in_thread(
            lambda: conversation.respond(user_text), state.config.llm_timeout_s, "the LLM"
        ):
            if conversation.last_error:
                raise LLMConnectionError(conversation.last_error)
            yield chunk({"content": clause if not clauses else " " + clause})
            clauses.append(clause)
    except Exception as exc:  # noqa: BLE001 - headers are sent: the error goes in the stream
        yield _sse(_stream_error(state, "/v1/chat/completions", exc))
        return
    _observe_llm(state, conversation, started)
    yield chunk({}, "stop")
    if include_usage:
        usage = _usage(conversation, body, " ".join(clauses))
        yield _sse(
            {
                "id": reply_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [],
                "usage": usage,
            }
        )
    yield "data: [DONE]\n\n"


def _conversation_for(state: ServerState, body: ChatRequest):
    """A one-request Conversation whose memory holds the messages before the last user one."""
    from duetto.dialogue import Conversation, Memory, Turn
    from duetto.llm import load_llm

    settings = state.settings
    limit = body.max_completion_tokens or body.max_tokens
    llm_settings = dataclasses.replace(
        settings.llm,
        max_tokens=limit or settings.llm.max_tokens,
        temperature=settings.llm.temperature if body.temperature is None else body.temperature,
    )
    system = [_text(m) for m in body.messages if m.role in ("system", "developer")]
    memory = Memory(" ".join(system) or settings.llm.system_prompt, settings.memory.max_tokens)
    pending = ""
    for m in body.messages:
        if m.role == "user":
            pending = f"{pending} {_text(m)}".strip()
        elif m.role == "assistant":
            memory.add(Turn(pending, _text(m)))
            pending = ""
    if body.messages[-1].role != "user" or not pending:
        raise DuettoError(
            "the last message must come from the user and hold text",
            "end 'messages' with {'role': 'user', 'content': '...'}",
        )
    return Conversation(load_llm(llm_settings), llm_settings, memory), pending


def _text(m: ChatMessage) -> str:
    if isinstance(m.content, str):
        return m.content
    parts = [p.get("text", "") for p in m.content or () if p.get("type") == "text"]
    return " ".join(p for p in parts if p)


def _usage(conversation, body: ChatRequest, reply: str) -> dict:
    count = conversation.llm.count_tokens
    prompt = sum(count(_text(m)) for m in body.messages)
    completion = count(reply) if reply else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _observe_llm(state: ServerState, conversation, started: float) -> None:
    if conversation.first_token_at:
        state.metrics.observe_stage("llm_first_token_http", conversation.first_token_at - started)


# ----------------------------------------------------------------------------- models
@router.get("/models", summary="Models this server answers to (OpenAI-compatible)")
async def list_models(request: Request):
    settings = get_state(request).settings
    return {"object": "list", "data": [m.to_openai() for m in catalog.models(settings)]}


@router.get("/models/{model_id}", summary="One model (OpenAI-compatible)")
async def retrieve_model(model_id: str, request: Request):
    return catalog.find_model(get_state(request).settings, model_id).to_openai()


# ----------------------------------------------------------------------------- helpers
def _sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _stream_error(state: ServerState, route: str, exc: BaseException) -> dict:
    status, body = error_payload(exc)
    state.metrics.errors.labels(route, body["error"]["code"] or str(status)).inc()
    return body
