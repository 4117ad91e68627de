// livepuppet page: pick a portrait, start the camera (or talk), watch the avatar, tune it live.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem("livepuppet-token") || "",
  portrait: "default",
  mode: "camera",
  pc: null, stream: null, resource: null, session: null, timer: null,
  ws: null, audioCtx: null, audioNode: null, info: null,
};
// Read by the end-to-end test and handy in the console.
window.livepuppet = { framesDecoded: 0, fps: 0, motion: 0, motionSamples: [], session: null, errors: [] };

function authHeaders(extra = {}) {
  return state.token ? { ...extra, Authorization: `Bearer ${state.token}` } : extra;
}

function setStatus(text, cls = "") {
  const el = $("status");
  el.textContent = text;
  el.className = `pill ${cls}`;
}

function showError(message) {
  $("error").textContent = message || "";
  if (message) window.livepuppet.errors.push(message);
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: authHeaders(options.headers || {}) });
  if (response.status === 401) {
    $("token-box").hidden = false;
    throw new Error("this server needs a token (enter it above)");
  }
  if (!response.ok) {
    let message = `${response.status}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

async function loadPortraits() {
  const data = await (await api("/api/portraits")).json();
  const box = $("portraits");
  box.innerHTML = "";
  for (const p of data.portraits) {
    const img = document.createElement("img");
    img.alt = p.name;
    img.title = p.name;
    img.dataset.id = p.id;
    img.className = p.id === state.portrait ? "selected" : "";
    img.onclick = () => { state.portrait = p.id; loadPortraits(); };
    // Thumbnails are protected when a token is set: fetch them with the header.
    api(p.thumbnail).then((r) => r.blob()).then((b) => { img.src = URL.createObjectURL(b); }).catch(() => {});
    box.appendChild(img);
  }
}

async function upload(file) {
  $("upload-msg").textContent = "preparing…";
  try {
    const r = await api(`/api/portraits?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file,
      headers: { "Content-Type": file.type || "application/octet-stream" } });
    const p = await r.json();
    state.portrait = p.id;
    await loadPortraits();
    $("upload-msg").textContent = `ready: ${p.name}`;
  } catch (e) {
    $("upload-msg").textContent = "";
    showError(`upload failed: ${e.message}`);
  }
}

function waitIceGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", check); resolve(); } };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 3000);  // use what we have after 3 s
  });
}

async function connect(mode, sendTrack) {
  const pc = new RTCPeerConnection();
  state.pc = pc;
  window.livepuppet.pc = pc;
  if (sendTrack) pc.addTransceiver(sendTrack, { direction: "sendrecv" });
  else pc.addTransceiver("video", { direction: "recvonly" });
  if (mode === "talk") pc.addTransceiver("audio", { direction: "recvonly" });
  const remote = new MediaStream();
  pc.ontrack = (e) => { remote.addTrack(e.track); $("avatar").srcObject = remote; };
  pc.onconnectionstatechange = () => {
    const s = pc.connectionState;
    setStatus(s, s === "connected" ? "live" : (s === "failed" ? "bad" : ""));
    if (s === "failed") showError("connection failed");
  };
  await pc.setLocalDescription(await pc.createOffer());
  await waitIceGathering(pc);
  const r = await api(`/whip?portrait=${encodeURIComponent(state.portrait)}&mode=${mode}`, {
    method: "POST", body: pc.localDescription.sdp, headers: { "Content-Type": "application/sdp" } });
  state.resource = r.headers.get("Location");
  state.session = r.headers.get("X-Session-Id");
  window.livepuppet.session = state.session;
  await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
  state.timer = setInterval(pollStats, 1000);
}

async function startCamera() {
  showError("");
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: false });
    $("local").srcObject = state.stream;
    await connect("puppet", state.stream.getVideoTracks()[0]);
    $("start").disabled = true; $("stop").disabled = false; $("neutral").disabled = false;
    await sendControls();
  } catch (e) {
    showError(`could not start: ${e.message}`);
    await stop();
  }
}

async function stop() {
  clearInterval(state.timer);
  state.timer = null;
  if (state.ws) { try { state.ws.send(JSON.stringify({ type: "end" })); } catch (e) { /* closed */ } state.ws.close(); state.ws = null; }
  if (state.audioNode) { state.audioNode.disconnect(); state.audioNode = null; }
  if (state.audioCtx) { await state.audioCtx.close(); state.audioCtx = null; }
  if (state.resource) { api(state.resource, { method: "DELETE" }).catch(() => {}); state.resource = null; }
  if (state.pc) { state.pc.close(); state.pc = null; }
  if (state.stream) { state.stream.getTracks().forEach((t) => t.stop()); state.stream = null; }
  $("start").disabled = false; $("stop").disabled = true; $("neutral").disabled = true;
  $("talk-stop").disabled = true; $("talk-interrupt").disabled = true;
  setStatus("idle");
}

function controlValues() {
  const values = {};
  for (const el of document.querySelectorAll("[data-control]")) {
    values[el.dataset.control] = el.type === "checkbox" ? el.checked : parseFloat(el.value);
  }
  return values;
}

async function sendControls(extra = {}) {
  if (!state.session || state.mode !== "camera") return;
  try {
    await api(`/api/sessions/${state.session}`, { method: "PATCH", body: JSON.stringify({ ...controlValues(), ...extra }),
      headers: { "Content-Type": "application/json" } });
  } catch (e) { showError(`controls: ${e.message}`); }
}

// Avatar motion: mean absolute difference between consecutive sampled frames of the received video.
const probe = document.createElement("canvas");
probe.width = probe.height = 64;
let previous = null;
function sampleMotion() {
  const video = $("avatar");
  if (video.readyState < 2) return;
  const ctx = probe.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, 64, 64);
  const data = ctx.getImageData(0, 0, 64, 64).data;
  if (previous) {
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += Math.abs(data[i] - previous[i]) + Math.abs(data[i + 1] - previous[i + 1]);
    const motion = sum / (64 * 64 * 2);
    window.livepuppet.motion = motion;
    window.livepuppet.motionSamples.push(motion);
    if (window.livepuppet.motionSamples.length > 300) window.livepuppet.motionSamples.shift();
    $("stat-motion").textContent = motion.toFixed(2);
  }
  previous = data;
}
setInterval(sampleMotion, 200);

async function pollStats() {
  if (!state.pc) return;
  let rtt = 0, jitter = 0;
  const report = await state.pc.getStats();
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      window.livepuppet.framesDecoded = s.framesDecoded || 0;
      window.livepuppet.fps = s.framesPerSecond || 0;
      $("stat-fps").textContent = (s.framesPerSecond || 0).toFixed(1);
      if (s.jitterBufferEmittedCount) jitter = 1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount;
    }
    if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) rtt = 1000 * s.currentRoundTripTime;
  });
  if (!state.session) return;
  try {
    const info = await (await api(`/api/sessions/${state.session}`)).json();
    state.info = info;
    $("stat-engine-fps").textContent = info.fps.toFixed(1);
    $("stat-engine").textContent = `${info.engine_ms_p50.toFixed(1)} / ${info.engine_ms_p95.toFixed(1)}`;
    $("stat-latency").textContent = `≈ ${(info.engine_ms_p50 + rtt / 2 + jitter).toFixed(0)} ms`;
    $("stat-drops").textContent = `${info.dropped} / ${info.frames_repeated}`;
    $("stat-face").textContent = info.kind === "puppet" ? (info.face_found ? "found" : "not found") : "–";
    if (info.last_error) showError(info.last_error);
  } catch (e) {
    showError(e.message);
  }
}

// ---- Talking head: audio over WebSocket, avatar (video + the same audio) over WebRTC ----
async function startTalk(source) {
  showError("");
  try {
    await connect("talk", null);
    const info = await (await api("/api/info")).json();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const tokenParam = state.token ? `&token=${encodeURIComponent(state.token)}` : "";
    const ws = new WebSocket(`${scheme}://${location.hostname}:${info.audio_port}/talk?session=${state.session}${tokenParam}`);
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    ws.onmessage = (e) => {
      if (typeof e.data !== "string") return;
      const msg = JSON.parse(e.data);
      if (msg.type === "error") showError(`${msg.code}: ${msg.message}`);
      if (msg.type === "speaking") setStatus(msg.state ? "speaking" : "listening", "live");
    };
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("WebSocket failed")); });
    state.audioCtx = new AudioContext({ sampleRate: 48000 });  // one of the rates the server takes
    const rate = state.audioCtx.sampleRate;
    ws.send(JSON.stringify({ type: "start", sample_rate: rate, format: "pcm16" }));
    ws.send(JSON.stringify({ type: "set", emotion: $("emotion").value }));
    let input;
    if (source === "mic") {
      state.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
      input = state.audioCtx.createMediaStreamSource(state.stream);
    } else {
      const buffer = await state.audioCtx.decodeAudioData(await source.arrayBuffer());
      const node = state.audioCtx.createBufferSource();
      node.buffer = buffer;
      node.onended = () => { if (state.ws) state.ws.send(JSON.stringify({ type: "end" })); };
      node.start();
      input = node;
    }
    // ScriptProcessor is deprecated but needs no separate worklet file; 2048 samples ≈ 43 ms at 48 kHz.
    const proc = state.audioCtx.createScriptProcessor(2048, 1, 1);
    proc.onaudioprocess = (e) => {
      if (!state.ws || state.ws.readyState !== 1) return;
      const f = e.inputBuffer.getChannelData(0);
      const pcm = new Int16Array(f.length);
      for (let i = 0; i < f.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(f[i] * 32767)));
      state.ws.send(pcm.buffer);
    };
    input.connect(proc);
    proc.connect(state.audioCtx.destination);  // keeps the processor running; outputs silence
    state.audioNode = proc;
    $("talk-stop").disabled = false; $("talk-interrupt").disabled = false;
  } catch (e) {
    showError(`could not start talking: ${e.message}`);
    await stop();
  }
}

function switchTab(tab) {
  state.mode = tab;
  for (const el of document.querySelectorAll(".tab")) el.classList.toggle("active", el.dataset.tab === tab);
  $("camera-controls").hidden = tab !== "camera";
  $("camera-figure").hidden = tab !== "camera";
  $("talk-controls").hidden = tab !== "talk";
  stop();
}

$("start").onclick = startCamera;
$("stop").onclick = stop;
$("neutral").onclick = () => sendControls({ reset_neutral: true });
$("upload").onchange = (e) => { if (e.target.files[0]) upload(e.target.files[0]); };
$("token-save").onclick = () => {
  state.token = $("token").value.trim();
  sessionStorage.setItem("livepuppet-token", state.token);
  $("token-box").hidden = true;
  loadPortraits().catch((e) => showError(e.message));
};
for (const el of document.querySelectorAll("[data-control]")) el.onchange = () => sendControls();
for (const el of document.querySelectorAll(".tab")) el.onclick = () => switchTab(el.dataset.tab);
$("talk-mic").onclick = () => startTalk("mic");
$("talk-file").onchange = (e) => { if (e.target.files[0]) startTalk(e.target.files[0]); };
$("talk-interrupt").onclick = () => { if (state.ws) state.ws.send(JSON.stringify({ type: "interrupt" })); };
$("talk-stop").onclick = stop;
$("emotion").onchange = () => { if (state.ws) state.ws.send(JSON.stringify({ type: "set", emotion: $("emotion").value })); };
window.livepuppet.start = startCamera;
window.livepuppet.stop = stop;
loadPortraits().catch((e) => showError(e.message));
