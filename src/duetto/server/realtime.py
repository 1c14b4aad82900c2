"""``/v1/realtime``: a voice session over WebSocket, speaking a subset of OpenAI's Realtime protocol.

The connection only translates: client events feed a :class:`~duetto.pipeline.VoiceSession`
(server VAD, barge-in, ASR -> LLM -> TTS), and the session's frames go back out as OpenAI server
events. See docs/realtime.md for the events and fields supported and where duetto differs.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
import uuid
from dataclasses import dataclass, field, replace

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from duetto.config import Settings
from duetto.errors import AudioFormatError, DuettoError, ModelNotFoundError
from duetto.frames import (
    AgentText,
    Frame,
    Interrupt,
    SpeechAudio,
    SpeechStarted,
    SpeechStopped,
    StageError,
    Transcript,
    TurnDone,
    TurnMetrics,
)
from duetto.pipeline import PRE_ROLL_S, VoiceSession, has_words
from duetto.server import catalog
from duetto.server.errors import (
    AuthenticationError,
    RealtimeEventError,
    StageTimeoutError,
    error_headers,
    error_payload,
)
from duetto.server.limits import client_id
from duetto.server.metrics import TURN_STAGES
from duetto.server.pcm import WIRE_RATE, StreamResampler, decode_b64_pcm16, encode_b64_pcm16
from duetto.server.state import ServerState, get_state

log = logging.getLogger(__name__)
router = APIRouter(tags=["realtime"])

ROUTE = "/v1/realtime"
# Push-to-talk (turn_detection: null): silence never ends the turn, only a commit does.
MANUAL_END_SILENCE_MS = 24 * 3600 * 1000
# Bounds for session.update's turn_detection.silence_duration_ms.
MIN_SILENCE_MS, MAX_SILENCE_MS = 100, 10_000
# How long a closing handshake may take with a client that stopped reading.
CLOSE_TIMEOUT_S = 1.0
# WebSocket close code for a policy violation (RFC 6455): here, a client that does not read.
POLICY_VIOLATION = 1008
# Magic bytes of audio files a client might send instead of raw PCM16.
CONTAINER_MAGIC = {b"RIFF": "WAV", b"OggS": "Ogg", b"fLaC": "FLAC", b"ID3": "MP3"}
# How often the stage watchdog looks at the clock.
WATCHDOG_EVERY_S = 0.25
# What a turn waits for after each frame, as named in a timeout error.
STAGE_NAMES = {"asr": "speech recognition", "llm": "the LLM", "tts": "speech synthesis"}


class RealtimeSession(VoiceSession):
    """A voice session a client can also steer by hand (push-to-talk commit, clear): the
    engine's own :meth:`VoiceSession.end_turn` and :meth:`VoiceSession.discard_turn`."""


@dataclass
class _Response:
    id: str
    item_id: str
    text: list[str] = field(default_factory=list)
    audio_ms: float = 0.0
    cancel_reason: str | None = None


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@router.websocket(ROUTE)
async def realtime(ws: WebSocket) -> None:
    """Realtime voice session; see docs/realtime.md."""
    state = get_state(ws)
    try:
        _check_access(ws, state)
        agent = ws.query_params.get("agent") or state.config.default_agent
        _check_agent(state, agent)
    except DuettoError as exc:
        status, body = error_payload(exc)
        state.metrics.errors.labels(ROUTE, body["error"]["code"]).inc()
        denial = JSONResponse(body, status_code=status, headers=error_headers(exc))
        await ws.send_denial_response(denial)
        return
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol="realtime" if "realtime" in offered else None)
    connection = RealtimeConnection(ws, state, ws.query_params.get("model") or "duetto-realtime")
    await connection.run(agent)


def _check_access(ws: WebSocket, state: ServerState) -> None:
    model = ws.query_params.get("model")
    if model is not None:
        catalog.check_model(state.settings, model, catalog.REALTIME)
    key = websocket_key(ws)
    key_ok = state.config.key_ok(key)
    state.limiter.take(client_id(key, key_ok, state.config.keys, ws.scope.get("client")))
    if not key_ok:
        raise AuthenticationError(
            "missing or wrong API key",
            "send 'Authorization: Bearer KEY' or the subprotocol 'openai-insecure-api-key.KEY'",
        )


def websocket_key(ws: WebSocket) -> str | None:
    """The API key of a WebSocket: a Bearer header, or (browsers) OpenAI's subprotocol form."""
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for proto in ws.scope.get("subprotocols") or []:
        if proto.startswith("openai-insecure-api-key."):
            return proto.split(".", 1)[1]
    return None


def _check_agent(state: ServerState, agent: str) -> None:
    if agent not in state.agents:
        raise ModelNotFoundError(
            f"agent '{agent}' does not exist", f"valid agents: {', '.join(sorted(state.agents))}"
        )


class RealtimeConnection:
    """One WebSocket client and its voice session."""

    def __init__(self, ws: WebSocket, state: ServerState, model: str):
        self.ws, self.state, self.model = ws, state, model
        self.id = _new_id("sess")
        self.settings: Settings = copy.deepcopy(state.settings)  # session.update changes a copy
        self.voice = "alloy"
        self.agent = state.config.default_agent
        self.manual = False
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.outbox_bytes = 0
        self.stop = asyncio.Event()
        self.close_reason: str | None = None
        self.resampler = StreamResampler(WIRE_RATE)
        self.session: RealtimeSession | None = None
        self.heard_speech = False  # an agent can be chosen until the user first speaks
        self.user_item: str | None = None  # the item being spoken
        self.last_item: str | None = None
        self.committed_item: str | None = None
        self.awaiting_reply = False  # a turn was committed; its reply has not started yet
        self.cancel_requested = False
        self.response: _Response | None = None
        self.waiting_for: str | None = None  # the stage a turn waits on (asr, llm, tts)
        self.deadline = 0.0  # time.monotonic() by which that stage must show progress
        self.playing_until = 0.0  # when the reply audio sent so far has played out

    # ------------------------------------------------------------------------- lifecycle
    async def run(self, agent: str) -> None:
        metrics = self.state.metrics
        engine = self.state.engine
        try:
            responder = await run_in_threadpool(self.state.agents[agent], self.settings)
            asr = await run_in_threadpool(self._asr_for, responder)
        except DuettoError as exc:
            self.error(exc)
            await self._drain_and_close()
            return
        self.agent = agent
        self.session = RealtimeSession(
            self.settings,
            vad=engine.vad_factory(),
            asr=asr,
            tts=engine.tts,
            responder=responder,
            realtime=True,
        )
        metrics.active_sessions.inc()
        metrics.sessions.inc()
        self.state.open_sessions += 1
        self.send("session.created", session=self.session_object())
        tasks = [
            asyncio.ensure_future(self._read()),
            asyncio.ensure_future(self._pump()),
            asyncio.ensure_future(self._write()),
            asyncio.ensure_future(self._watchdog()),
            asyncio.ensure_future(self.stop.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.session.cancel_all()  # stops the reply thread, ASR and TTS of this session
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            metrics.active_sessions.dec()
            self.state.open_sessions -= 1
            if self.close_reason:
                await self._close(POLICY_VIOLATION, self.close_reason)

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code, reason), CLOSE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the client may already be gone
            pass

    async def _drain_and_close(self) -> None:
        while not self.outbox.empty():
            try:
                await self.ws.send_text(self.outbox.get_nowait())
            except Exception:  # noqa: BLE001
                return
        await self._close(POLICY_VIOLATION, "session could not start")

    async def _write(self) -> None:
        while True:
            text = await self.outbox.get()
            try:
                await self.ws.send_text(text)
            except Exception:  # noqa: BLE001 - disconnected: the reader notices and ends
                return
            self.outbox_bytes -= len(text)

    def send(self, kind: str, **fields) -> None:
        """Queue a server event, unless the client has stopped reading (then end the session)."""
        if self.stop.is_set():
            return
        text = json.dumps({"type": kind, "event_id": _new_id("event"), **fields})
        if self.outbox_bytes + len(text) > self.state.config.max_outbox_bytes:
            self.close_reason = "client is not reading: too many server events are waiting"
            self.state.metrics.slow_clients.inc()
            log.warning("realtime session %s: %s", self.id, self.close_reason)
            self.stop.set()
            return
        self.outbox_bytes += len(text)
        self.outbox.put_nowait(text)

    def error(self, exc: BaseException, event_id: str | None = None) -> None:
        _, body = error_payload(exc)
        error = body["error"] | {"event_id": event_id}
        self.state.metrics.errors.labels(ROUTE, error["code"] or "error").inc()
        self.send("error", error=error)

    # ------------------------------------------------------------------------- client events
    async def _read(self) -> None:
        limit = self.state.config.max_event_bytes
        while True:
            try:
                message = await self.ws.receive()
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.error(RealtimeEventError("binary frames are not supported", "send JSON text"))
                continue
            if len(text) > limit:
                self.error(
                    RealtimeEventError(
                        f"event of {len(text)} bytes is larger than the limit of {limit}",
                        "send audio in smaller appends (e.g. 20-100 ms each)",
                    )
                )
                continue
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        event_id = None
        try:
            event = _parse_event(text)
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise RealtimeEventError("event must be a JSON object with a string 'type'")
            event_id = event.get("event_id")
            handler = self.HANDLERS.get(event["type"])
            if handler is None:
                raise RealtimeEventError(
                    f"unknown event type '{event['type']}'",
                    f"supported: {', '.join(self.HANDLERS)}",
                )
            await handler(self, event)
        except DuettoError as exc:
            self.error(exc, event_id)
        except Exception as exc:  # noqa: BLE001 - one bad event must not end the session
            log.exception("realtime session %s: event failed", self.id)
            self.error(exc, event_id if isinstance(event_id, str | None) else None)

    async def _session_update(self, event: dict) -> None:
        changes = event.get("session")
        if not isinstance(changes, dict):
            raise RealtimeEventError("'session' must be an object")
        await self._apply(changes)
        self.send("session.updated", session=self.session_object())

    async def _append(self, event: dict) -> None:
        data = event.get("audio")
        if not isinstance(data, str):
            raise RealtimeEventError("'audio' must be a base64 string of PCM16 audio")
        _reject_containers(data)
        samples = decode_b64_pcm16(data)
        self.session.push(self.resampler(samples))

    async def _commit(self, event: dict) -> None:
        if not self.session.end_turn():
            raise RealtimeEventError(
                "nothing to commit: no speech was heard since the last turn",
                "append speech first (the server VAD must hear it)",
            )

    async def _clear(self, event: dict) -> None:
        self.session.discard_turn()
        self.user_item = None
        self.send("input_audio_buffer.cleared")

    async def _response_create(self, event: dict) -> None:
        if self.response is None and not self.awaiting_reply:
            raise RealtimeEventError(
                "nothing to respond to: duetto answers committed user audio",
                "append speech, then commit it (or let the server VAD end the turn)",
            )
        # A committed turn is answered already; the response's events follow.

    async def _response_cancel(self, event: dict) -> None:
        if self.response is None and not self.awaiting_reply:
            raise RealtimeEventError("there is no response to cancel")
        self.cancel_requested = True
        self.awaiting_reply = False
        self.session.interrupt()

    HANDLERS = {
        "session.update": _session_update,
        "input_audio_buffer.append": _append,
        "input_audio_buffer.commit": _commit,
        "input_audio_buffer.clear": _clear,
        "response.create": _response_create,
        "response.cancel": _response_cancel,
    }

    # ------------------------------------------------------------------------- session settings
    def session_object(self) -> dict:
        s = self.settings
        detection = None
        if not self.manual:
            detection = {
                "type": "server_vad",
                "threshold": s.vad.threshold,
                "prefix_padding_ms": int(PRE_ROLL_S * 1000),
                "silence_duration_ms": s.turn.end_silence_ms,
                "create_response": True,
                "interrupt_response": s.turn.barge_in,
            }
        memory = getattr(self.session.responder, "memory", None) if self.session else None
        return {
            "id": self.id,
            "object": "realtime.session",
            "model": self.model,
            "modalities": ["audio", "text"],
            "instructions": getattr(memory, "system_prompt", None),
            "voice": self.voice,
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": {"model": "duetto-asr"},
            "turn_detection": detection,
            "temperature": s.llm.temperature,
            "max_response_output_tokens": s.llm.max_tokens,
            "speed": s.tts.speed,
            "tools": [],
            "agent": self.agent,
            "duetto": {
                "agents": sorted(self.state.agents),
                "voices": catalog.voices(self.settings),
                "sample_rate": WIRE_RATE,
                "partial_transcripts": s.turn.partial_every_ms > 0,
            },
        }

    async def _apply(self, changes: dict) -> None:
        """Check every field first, then apply them all (an invalid update changes nothing)."""
        s = self.settings
        updates: list = []
        for key in ("input_audio_format", "output_audio_format"):
            if key in changes and changes[key] != "pcm16":
                raise RealtimeEventError(
                    f"{key} '{changes[key]}' is not supported", "duetto speaks pcm16 at 24 kHz"
                )
        modalities = changes.get("modalities")
        if modalities is not None and (
            not isinstance(modalities, list) or "audio" not in modalities
        ):
            raise RealtimeEventError("modalities must include 'audio'", "use ['audio', 'text']")
        if "instructions" in changes:
            text = changes["instructions"]
            if not isinstance(text, str):
                raise RealtimeEventError("'instructions' must be a string")
            memory = getattr(self.session.responder, "memory", None)
            if memory is not None and hasattr(memory, "system_prompt") and text.strip():
                updates.append(lambda: setattr(memory, "system_prompt", text.strip()))
        if "turn_detection" in changes:
            updates += self._turn_detection(changes["turn_detection"])
        if "temperature" in changes:
            value = _number(changes["temperature"], "temperature", 0.0, 2.0)
            updates.append(lambda: setattr(s.llm, "temperature", value))
        if "max_response_output_tokens" in changes:
            value = changes["max_response_output_tokens"]
            if value != "inf":
                tokens = int(_number(value, "max_response_output_tokens", 1, 1024))
                updates.append(lambda: setattr(s.llm, "max_tokens", tokens))
        if "speed" in changes:
            speed = _number(changes["speed"], "speed", 0.25, 4.0)
            updates.append(lambda: setattr(s.tts, "speed", speed))
        if "voice" in changes:
            updates.append(await self._voice(changes["voice"]))
        if "agent" in changes and changes["agent"] != self.agent:
            updates.append(await self._agent(changes["agent"]))
        for update in updates:
            update()

    def _turn_detection(self, value) -> list:
        s = self.settings
        if value is None:

            def manual():
                self.manual = True
                s.turn.end_silence_ms = MANUAL_END_SILENCE_MS
                s.turn.barge_in = False

            return [manual]
        if not isinstance(value, dict):
            raise RealtimeEventError("'turn_detection' must be an object or null")
        kind = value.get("type", "server_vad")
        if kind != "server_vad":
            raise RealtimeEventError(
                f"turn_detection type '{kind}' is not supported",
                "use 'server_vad', or null for push-to-talk",
            )
        if value.get("create_response") is False:
            raise RealtimeEventError(
                "create_response: false is not supported", "duetto answers every turn it hears"
            )
        base = self.state.settings
        threshold = _number(value.get("threshold", s.vad.threshold), "threshold", 0.0, 1.0)
        silence = int(
            _number(
                value.get("silence_duration_ms", base.turn.end_silence_ms),
                "silence_duration_ms",
                MIN_SILENCE_MS,
                MAX_SILENCE_MS,
            )
        )
        barge_in = value.get("interrupt_response", base.turn.barge_in)
        if not isinstance(barge_in, bool):
            raise RealtimeEventError("'interrupt_response' must be true or false")

        def server_vad():
            self.manual = False
            s.vad.threshold = threshold
            s.turn.end_silence_ms = silence
            s.turn.barge_in = barge_in

        return [server_vad]

    async def _voice(self, name):
        from duetto.tts import load_tts

        if not isinstance(name, str):
            raise RealtimeEventError("'voice' must be a string")
        tts = await run_in_threadpool(load_tts, catalog.tts_settings_for(self.settings, name))
        if tts is not self.session.tts and self._replying():
            raise RealtimeEventError("the voice cannot change while the agent is speaking")

        def voice():
            self.voice = name
            self.session.tts = tts
            self.session.sample_rate = tts.sample_rate

        return voice

    async def _agent(self, name):
        if not isinstance(name, str):
            raise RealtimeEventError("'agent' must be a string")
        _check_agent(self.state, name)
        if self.heard_speech:
            raise RealtimeEventError(
                "the agent can only be chosen before the conversation starts",
                "open a new session (or pass ?agent=NAME on the URL)",
            )
        responder = await run_in_threadpool(self.state.agents[name], self.settings)
        asr = await run_in_threadpool(self._asr_for, responder)

        def agent():
            self.agent = name
            self.session.responder = responder
            self.session.asr = asr

        return agent

    def _asr_for(self, responder):
        """The engine's one ASR, or the model the agent names (``Responder.asr_model``, e.g.
        the bank's adapted tiny.en), loaded once per process and shared by its sessions."""
        model = getattr(responder, "asr_model", None)
        if not model or model == self.settings.asr.model:
            return self.state.engine.asr
        from duetto.asr import load_asr

        return load_asr(replace(self.settings.asr, model=model))

    def _replying(self) -> bool:
        return self.response is not None or self.awaiting_reply

    # ------------------------------------------------------------------------- session frames
    async def _pump(self) -> None:
        async for frame in self.session.events():
            try:
                self._on_frame(frame)
            except Exception:  # noqa: BLE001 - one bad frame must not end the session
                log.exception("realtime session %s: could not forward %s", self.id, frame)

    # ------------------------------------------------------------------------- stage timeouts
    def _expect(self, stage: str | None) -> None:
        """From now on the turn waits for ``stage`` (None: for nothing), for at most its timeout
        after the reply audio sent so far has played (the next frame may wait for that)."""
        self.waiting_for = stage
        if stage is None:
            return
        config = self.state.config
        timeout = {
            "asr": config.asr_timeout_s,
            "llm": config.llm_timeout_s,
            "tts": config.tts_timeout_s,
        }[stage]
        self.deadline = max(self.playing_until, time.monotonic()) + timeout

    async def _watchdog(self) -> None:
        """A stuck stage ends the turn with an error event, instead of a silent session."""
        while True:
            await asyncio.sleep(WATCHDOG_EVERY_S)
            stage = self.waiting_for
            if stage is None or time.monotonic() < self.deadline:
                continue
            self.waiting_for = None
            log.warning("realtime session %s: %s timed out", self.id, stage)
            self.error(
                StageTimeoutError(
                    f"{STAGE_NAMES[stage]} did not answer in time; the turn was dropped",
                    "speak again, or ask the server's operator to raise its stage timeouts",
                )
            )
            self.awaiting_reply = False
            self.session.interrupt()

    def _on_frame(self, frame: Frame) -> None:
        self._track_stage(frame)
        if isinstance(frame, SpeechStarted):
            self.heard_speech = True
            self.user_item = _new_id("item")
            self.send(
                "input_audio_buffer.speech_started",
                audio_start_ms=int(frame.t * 1000),
                item_id=self.user_item,
            )
        elif isinstance(frame, Transcript) and not frame.final:
            self.send(
                "conversation.item.input_audio_transcription.partial",
                item_id=self.user_item,
                content_index=0,
                transcript=frame.text,
            )
        elif isinstance(frame, SpeechStopped):
            self._committed(frame)
        elif isinstance(frame, Transcript):
            self.send(
                "conversation.item.input_audio_transcription.completed",
                item_id=self.committed_item,
                content_index=0,
                transcript=frame.text,
                **_alternatives(frame),
            )
            if not has_words(frame.text):
                self.awaiting_reply = False  # noise: the engine does not answer it
        elif isinstance(frame, AgentText):
            self._agent_text(frame)
        elif isinstance(frame, SpeechAudio):
            if self.response is not None:
                self.response.audio_ms += len(frame.samples) / frame.sample_rate * 1000
                self.send(
                    "response.audio.delta",
                    response_id=self.response.id,
                    item_id=self.response.item_id,
                    output_index=0,
                    content_index=0,
                    delta=encode_b64_pcm16(frame.samples, frame.sample_rate),
                )
        elif isinstance(frame, Interrupt):
            if self.response is not None:
                self.response.cancel_reason = (
                    "client_cancelled" if self.cancel_requested else "turn_detected"
                )
            self.awaiting_reply = False
            self.cancel_requested = False
        elif isinstance(frame, TurnDone):
            self.state.metrics.observe_turn(frame.metrics)
            if self.response is not None:
                self._response_done(frame.metrics)
        elif isinstance(frame, StageError):
            self.error(_StageFailure(f"{frame.stage} stage failed: {frame.message}"))

    def _track_stage(self, frame: Frame) -> None:
        if isinstance(frame, SpeechStopped):
            self.playing_until = 0.0
            self._expect("asr")
        elif isinstance(frame, Transcript) and frame.final:
            self._expect("llm" if has_words(frame.text) else None)
        elif isinstance(frame, AgentText):
            self._expect("tts")
        elif isinstance(frame, SpeechAudio):
            seconds = len(frame.samples) / frame.sample_rate
            self.playing_until = max(self.playing_until, time.monotonic()) + seconds
            self._expect("llm")
        elif isinstance(frame, SpeechStarted | TurnDone | StageError):
            self._expect(None)
            self.playing_until = 0.0

    def _committed(self, frame: SpeechStopped) -> None:
        item = self.user_item or _new_id("item")
        self.send(
            "input_audio_buffer.speech_stopped", audio_end_ms=int(frame.t * 1000), item_id=item
        )
        self.send("input_audio_buffer.committed", previous_item_id=self.last_item, item_id=item)
        self.send(
            "conversation.item.created",
            previous_item_id=self.last_item,
            item={
                "id": item,
                "object": "realtime.item",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            },
        )
        self.last_item = self.committed_item = item
        self.user_item = None
        self.awaiting_reply = True

    def _agent_text(self, frame: AgentText) -> None:
        if self.response is None:
            self.awaiting_reply = False
            response = _Response(id=_new_id("resp"), item_id=_new_id("item"))
            self.response = response
            item = _assistant_item(response, "in_progress")
            self.send("response.created", response=_response_object(response, "in_progress"))
            self.send(
                "response.output_item.added", response_id=response.id, output_index=0, item=item
            )
            self.send("conversation.item.created", previous_item_id=self.last_item, item=item)
            self.send(
                "response.content_part.added",
                response_id=response.id,
                item_id=response.item_id,
                output_index=0,
                content_index=0,
                part={"type": "audio", "transcript": ""},
            )
            self.last_item = response.item_id
        response = self.response
        delta = frame.text if not response.text else " " + frame.text
        response.text.append(frame.text)
        self.send(
            "response.audio_transcript.delta",
            response_id=response.id,
            item_id=response.item_id,
            output_index=0,
            content_index=0,
            delta=delta,
        )

    def _response_done(self, m: TurnMetrics) -> None:
        response, self.response = self.response, None
        status = "cancelled" if m.interrupted else "completed"
        said = m.agent_text
        ids = {"response_id": response.id, "item_id": response.item_id, "output_index": 0}
        self.send("response.audio.done", **ids, content_index=0)
        self.send("response.audio_transcript.done", **ids, content_index=0, transcript=said)
        part = {"type": "audio", "transcript": said}
        self.send("response.content_part.done", **ids, content_index=0, part=part)
        item = _assistant_item(response, "incomplete" if m.interrupted else "completed", said)
        self.send("response.output_item.done", response_id=response.id, output_index=0, item=item)
        body = _response_object(response, status, [item])
        if m.interrupted:
            body["status_details"] = {
                "type": "cancelled",
                "reason": response.cancel_reason or "turn_detected",
            }
        body["duetto"] = {
            "turn": m.turn,
            "user_text": m.user_text,
            "agent_text": said,
            "interrupted": m.interrupted,
            "latency_ms": {stage: getattr(m, name) for name, stage in TURN_STAGES.items()},
            "asr_rtf": m.asr_rtf,
            "tts_rtf": m.tts_rtf,
            "audio_ms": round(response.audio_ms, 1),
        }
        self.send("response.done", response=body)


class _StageFailure(DuettoError):
    http_status = 500
    code = "stage_failed"


def _assistant_item(response: _Response, status: str, transcript: str | None = None) -> dict:
    return {
        "id": response.item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "audio", "transcript": transcript}] if transcript is not None else [],
    }


def _response_object(response: _Response, status: str, output: list | None = None) -> dict:
    return {
        "id": response.id,
        "object": "realtime.response",
        "status": status,
        "status_details": None,
        "output": output or [],
        "usage": None,
    }


def _alternatives(frame: Transcript) -> dict:
    """A final transcript's n-best as the ``completed`` event's ``alternatives`` (a duetto
    extension), best first: ``{"transcript", "logprob"}`` (mean token log-probability).
    Nothing when the ASR gave none (``asr.nbest`` 1 and an agent without n-best)."""
    if not frame.alternatives:
        return {}
    return {
        "alternatives": [
            {"transcript": text, "logprob": round(score, 4)} for text, score in frame.alternatives
        ]
    }


def _number(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise RealtimeEventError(f"'{name}' must be a number from {low} to {high}, got {value!r}")
    return float(value)


def _parse_event(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RealtimeEventError(f"event is not valid JSON ({exc.msg})") from None
    except RecursionError:  # "[[[[..." nested deeper than the parser's stack
        raise RealtimeEventError("event is nested too deeply to be a realtime event") from None


def _reject_containers(data: str) -> None:
    import base64

    head = base64.b64decode(data[:8] + "=" * (-len(data[:8]) % 4), validate=False)[:4]
    for magic, name in CONTAINER_MAGIC.items():
        if head.startswith(magic):
            raise AudioFormatError(
                f"'audio' holds a {name} file, not raw PCM16",
                "send 16-bit little-endian mono PCM at 24 kHz, without a file header",
            )
