// duetto web page: microphone -> /v1/realtime (OpenAI Realtime events) -> streamed reply audio.
"use strict";

const RATE = 24000; // PCM16 rate of the realtime protocol, both directions
const LEAD_S = 0.05; // scheduling slack before the first reply chunk plays
const STAGES = [
  ["endpoint", "end of turn"],
  ["asr", "ASR"],
  ["llm_first_clause", "LLM"],
  ["tts_first_audio", "TTS"],
];
const STAGE_CLASS = { endpoint: "endpoint", asr: "asr", llm_first_clause: "llm", tts_first_audio: "tts" };

const $ = (id) => document.getElementById(id);
const app = {
  ws: null, ctx: null, stream: null, node: null,
  mode: "handsfree", talking: false,
  sources: new Set(), nextTime: 0, played: 0,
  turns: new Map(), // user item id -> <li>
  responseTurn: null, // <li> of the reply being spoken
  lastTurn: null,
  responding: false,
};
window.duetto = app; // for tests and curious users

function setStatus(text) { $("status").textContent = text; }
function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

async function start() {
  showError("");
  $("start").disabled = true;
  try {
    const health = await (await fetch("/healthz")).json();
    if (health.auth_required && !$("apikey").value) {
      $("start").disabled = false;
      document.querySelector("details").open = true;
      $("apikey").focus();
      showError("This server needs an API key: enter it under Settings, then start again.");
      return;
    }
    setStatus("Starting the microphone…");
    app.ctx = new AudioContext({ sampleRate: RATE });
    app.stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        autoGainControl: false, // automatic gain changes levels under the server's VAD
        noiseSuppression: false,
        echoCancellation: $("echo").checked,
      },
    });
    await app.ctx.audioWorklet.addModule("/static/capture.js");
    const source = app.ctx.createMediaStreamSource(app.stream);
    app.node = new AudioWorkletNode(app.ctx, "capture");
    const mute = app.ctx.createGain();
    mute.gain.value = 0; // keeps the worklet pulled by the graph without echoing the microphone
    source.connect(app.node).connect(mute).connect(app.ctx.destination);
    app.node.port.onmessage = (e) => sendAudio(e.data);
    connect();
  } catch (err) {
    showError(`Could not start: ${err.message || err}`);
    stop();
  }
}

function connect() {
  const url = new URL("/v1/realtime", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const agent = $("agent").value;
  if (agent) url.searchParams.set("agent", agent);
  const protocols = ["realtime"];
  if ($("apikey").value) protocols.push(`openai-insecure-api-key.${$("apikey").value}`);
  setStatus("Connecting…");
  const ws = new WebSocket(url, protocols);
  app.ws = ws;
  ws.onopen = () => {
    applyMode();
    $("stop").hidden = false;
    $("start").hidden = true;
  };
  ws.onmessage = (e) => onEvent(JSON.parse(e.data));
  ws.onclose = (e) => {
    if (app.ws === ws) {
      if (e.code !== 1000 && e.code !== 1005) showError(`Disconnected (${e.code}${e.reason ? ": " + e.reason : ""}).`);
      stop();
    }
  };
}

function send(event) {
  if (app.ws && app.ws.readyState === WebSocket.OPEN) app.ws.send(JSON.stringify(event));
}

function sendAudio(buffer) {
  if (app.mode === "ptt" && !app.talking) return;
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  send({ type: "input_audio_buffer.append", audio: btoa(binary) });
}

function applyMode() {
  app.mode = document.querySelector("input[name=mode]:checked").value;
  const ptt = app.mode === "ptt";
  $("talk").hidden = !ptt || !app.ws;
  send({
    type: "session.update",
    session: { turn_detection: ptt ? null : { type: "server_vad", interrupt_response: true } },
  });
  setStatus(ptt ? "Hold the button (or the space bar) and speak." : "Listening — just talk.");
}

function stop() {
  const ws = app.ws;
  app.ws = null;
  if (ws) ws.close(1000);
  stopPlayback();
  if (app.stream) app.stream.getTracks().forEach((t) => t.stop());
  if (app.ctx) app.ctx.close();
  app.stream = app.ctx = app.node = null;
  $("start").hidden = false;
  $("start").disabled = false;
  $("stop").hidden = true;
  $("talk").hidden = true;
  setStatus("Conversation ended. Press “Start conversation” to talk again.");
}

// ------------------------------------------------------------------ push-to-talk
function talkDown() {
  if (app.talking || app.mode !== "ptt" || !app.ws) return;
  app.talking = true;
  $("talk").setAttribute("aria-pressed", "true");
  $("talk").textContent = "Listening… release to send";
  if (app.responding || app.sources.size) {
    stopPlayback();
    send({ type: "response.cancel" });
  }
}

function talkUp() {
  if (!app.talking) return;
  app.talking = false;
  $("talk").setAttribute("aria-pressed", "false");
  $("talk").textContent = "Hold to talk";
  send({ type: "input_audio_buffer.commit" });
  send({ type: "response.create" });
}

// ------------------------------------------------------------------ server events
function onEvent(ev) {
  switch (ev.type) {
    case "session.created":
      fillAgents(ev.session);
      break;
    case "input_audio_buffer.speech_started":
      if (app.sources.size) stopPlayback(); // barge-in: the server stops too
      $("partial").textContent = "(speaking)";
      showError("");
      break;
    case "conversation.item.input_audio_transcription.partial":
      $("partial").textContent = ev.transcript;
      break;
    case "input_audio_buffer.committed":
      turnFor(ev.item_id);
      setStatus("Thinking…");
      break;
    case "conversation.item.input_audio_transcription.completed": {
      const li = turnFor(ev.item_id);
      li.querySelector(".user .text").textContent = ev.transcript || "(nothing heard)";
      $("partial").textContent = "…";
      break;
    }
    case "response.created":
      app.responding = true;
      app.responseTurn = app.lastTurn;
      break;
    case "response.audio_transcript.delta":
      if (app.responseTurn) app.responseTurn.querySelector(".agent .text").textContent += ev.delta;
      $("speaking").textContent = "speaking";
      setStatus(app.mode === "ptt" ? "Agent speaking — hold the button to interrupt." : "Agent speaking — talk to interrupt.");
      break;
    case "response.audio.delta":
      play(ev.delta);
      break;
    case "response.done":
      finishTurn(ev.response);
      break;
    case "error":
      showError(ev.error.message);
      break;
  }
}

function fillAgents(session) {
  const select = $("agent");
  const known = new Set([...select.options].map((o) => o.value));
  for (const name of (session.duetto && session.duetto.agents) || []) {
    if (!known.has(name)) select.add(new Option(name, name));
  }
}

function turnFor(itemId) {
  let li = app.turns.get(itemId);
  if (!li) {
    li = $("turn-template").content.firstElementChild.cloneNode(true);
    li.dataset.item = itemId;
    $("log").appendChild(li);
    app.turns.set(itemId, li);
  }
  app.lastTurn = li;
  return li;
}

function finishTurn(response) {
  app.responding = false;
  const li = app.responseTurn;
  app.responseTurn = null;
  if (!li) return;
  const d = response.duetto || {};
  if (d.agent_text !== undefined) li.querySelector(".agent .text").textContent = d.agent_text;
  if (response.status === "cancelled") li.querySelector(".flag").textContent = "(interrupted)";
  if (d.latency_ms) drawLatency(li.querySelector(".latency"), d.latency_ms);
  li.classList.add("done");
  setStatus(app.mode === "ptt" ? "Hold the button (or the space bar) and speak." : "Listening — just talk.");
}

function drawLatency(box, ms) {
  const bar = box.querySelector(".bar");
  bar.textContent = "";
  const total = ms.voice_to_voice || STAGES.reduce((s, [k]) => s + (ms[k] || 0), 0);
  const scale = Math.max(total, 1);
  for (const [key, label] of STAGES) {
    if (!ms[key]) continue;
    const seg = document.createElement("span");
    seg.className = `seg ${STAGE_CLASS[key]}`;
    seg.style.width = `${Math.min(100, (100 * ms[key]) / scale)}%`;
    seg.title = `${label}: ${Math.round(ms[key])} ms`;
    bar.appendChild(seg);
  }
  const parts = STAGES.filter(([k]) => ms[k] != null).map(([k, label]) => `${label} ${Math.round(ms[k])} ms`);
  const v2v = ms.voice_to_voice != null ? `voice-to-voice ${Math.round(ms.voice_to_voice)} ms` : "no reply audio";
  box.querySelector(".numbers").textContent = `${v2v} · ${parts.join(" · ")}`;
  box.setAttribute("aria-label", `Latency: ${v2v}; ${parts.join(", ")}`);
}

// ------------------------------------------------------------------ playback
function play(b64) {
  if (!app.ctx) return;
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const pcm = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  const buffer = app.ctx.createBuffer(1, pcm.length, RATE);
  const channel = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 32768;
  const source = app.ctx.createBufferSource();
  source.buffer = buffer;
  source.connect(app.ctx.destination);
  const at = Math.max(app.ctx.currentTime + LEAD_S, app.nextTime);
  source.start(at);
  app.nextTime = at + buffer.duration;
  app.sources.add(source);
  source.onended = () => {
    if (!app.sources.delete(source)) return; // stopped early by a barge-in
    app.played += buffer.duration;
    const out = $("played");
    out.dataset.seconds = app.played.toFixed(2);
    out.textContent = `${app.played.toFixed(1)} s`;
    if (!app.sources.size) $("speaking").textContent = "quiet";
  };
}

function stopPlayback() {
  for (const source of app.sources) {
    app.sources.delete(source);
    try { source.stop(); } catch (_) { /* not started yet */ }
  }
  app.nextTime = 0;
  $("speaking").textContent = "quiet";
}

// ------------------------------------------------------------------ wiring
$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
for (const radio of document.querySelectorAll("input[name=mode]")) {
  radio.addEventListener("change", () => { if (app.ws) applyMode(); });
}
const talk = $("talk");
talk.addEventListener("pointerdown", (e) => { talk.setPointerCapture(e.pointerId); talkDown(); });
talk.addEventListener("pointerup", talkUp);
talk.addEventListener("pointercancel", talkUp);
talk.addEventListener("keydown", (e) => { if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); talkDown(); } });
talk.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") { e.preventDefault(); talkUp(); } });
document.addEventListener("keydown", (e) => {
  if (e.key === " " && !e.repeat && app.mode === "ptt" && app.ws && !e.target.closest("input, select, textarea, button, summary")) {
    e.preventDefault();
    talkDown();
  }
});
document.addEventListener("keyup", (e) => {
  if (e.key === " " && app.talking && !e.target.closest("input, select, textarea, button, summary")) {
    e.preventDefault();
    talkUp();
  }
});
