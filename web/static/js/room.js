// The meeting page: joins the room named in the URL with one
// RTCPeerConnection, publishes camera (three simulcast layers) and mic,
// shows everyone else, and keeps the session alive across reconnects.
// Automation contract (docs/web-client.md): ?name=N&autojoin=1 joins at once.
import { Signaling, SignalError } from './signaling.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const roomName = decodeURIComponent(location.pathname.split('/')[2] || '');

const state = {
  room: roomName,
  name: '',
  me: '',
  sig: null,
  pc: null,
  local: null,        // MediaStream from getUserMedia
  screen: null,       // MediaStream from getDisplayMedia
  screenSender: null,
  tracks: new Map(),  // server track id -> track info
  mids: new Map(),    // media section -> server track id
  members: new Map(), // participant id -> {id, name}
  tiles: new Map(),   // tile key (participant id or track id for screens) -> element
  layers: new Map(),  // track id -> layer decision
  chat: [],
  speaker: '',
  pendingCandidates: [],
  leaving: false,
  reconnectDelay: 1000,
  subscribeTimer: null,
};

// --- status and messages -------------------------------------------------

function setStatus(text, kind = 'ok') {
  $('status').textContent = text;
  $('status').dataset.state = kind;
}

function showMessage(where, text) {
  $(where).textContent = text;
}

function explain(err) {
  const codes = {
    room_full: 'This meeting is full. Try again later or start another one.',
    invalid_room: 'That is not a valid room name.',
    unreachable: 'The server cannot be reached. Check your connection.',
    shutting_down: 'The server is restarting. Try again in a moment.',
    unauthorized: 'You need a valid invitation to join this meeting.',
    token_expired: 'Your invitation has expired.',
  };
  return codes[err.code] || err.message || String(err);
}

// --- pre-join: name, preview, devices ------------------------------------

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of [['videoinput', $('camera-select')], ['audioinput', $('mic-select')]]) {
    const current = select.value;
    select.replaceChildren();
    for (const d of devices.filter((x) => x.kind === kind)) {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${select.length + 1}`;
      select.append(o);
    }
    if (current) select.value = current;
  }
}

// getMedia asks for camera and mic, falling back to mic only, then to
// nothing (receive-only), and says so.
async function getMedia() {
  const cam = $('camera-select').value;
  const mic = $('mic-select').value;
  const video = { width: { ideal: 1280 }, height: { ideal: 720 }, deviceId: cam ? { exact: cam } : undefined };
  const audio = { deviceId: mic ? { exact: mic } : undefined };
  try {
    return await navigator.mediaDevices.getUserMedia({ video, audio });
  } catch (e) {
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio });
      showMessage('prejoin-message', 'Camera unavailable or not allowed: joining with audio only.');
      return s;
    } catch {
      showMessage('prejoin-message', 'Camera and microphone unavailable or not allowed: joining to watch and listen only.');
      return new MediaStream();
    }
  }
}

async function startPreview() {
  if (state.local) state.local.getTracks().forEach((t) => t.stop());
  state.local = await getMedia();
  $('preview').srcObject = state.local;
  try { await listDevices(); } catch { /* device labels need permission */ }
}

// --- tiles --------------------------------------------------------------

function tileFor(key, label, { self = false, stage = false } = {}) {
  let tile = state.tiles.get(key);
  if (tile) return tile;
  tile = $('tile-template').content.firstElementChild.cloneNode(true);
  tile.dataset.key = key;
  tile.dataset.participant = self ? state.me : key.split('/')[0];
  tile.querySelector('.name').textContent = label;
  if (self) {
    tile.classList.add('self');
    tile.querySelector('video').muted = true;
  }
  tile.stream = new MediaStream();
  tile.querySelector('video').srcObject = tile.stream;
  (stage ? $('stage') : $('grid')).append(tile);
  state.tiles.set(key, tile);
  visibility.observe(tile);
  return tile;
}

function removeTile(key) {
  const tile = state.tiles.get(key);
  if (!tile) return;
  visibility.unobserve(tile);
  tile.remove();
  state.tiles.delete(key);
}

function renderPeople() {
  const ul = $('people');
  ul.replaceChildren();
  const all = [{ id: state.me, name: `${state.name} (you)` }, ...state.members.values()];
  for (const p of all) {
    const li = document.createElement('li');
    li.textContent = p.name;
    li.dataset.participant = p.id;
    li.dataset.speaking = String(p.id === state.speaker);
    ul.append(li);
  }
  $('people-count').textContent = `(${all.length})`;
}

function applyMuted(info) {
  const tile = state.tiles.get(info.source === 'screen' ? `${info.participant}/screen` : info.participant);
  if (!tile) return;
  if (info.kind === 'audio') tile.dataset.mutedAudio = String(!!info.muted);
  else if (info.source !== 'screen') tile.dataset.mutedVideo = String(!!info.muted);
}

function setSpeaker(id) {
  state.speaker = id;
  for (const tile of state.tiles.values()) tile.classList.toggle('speaking', tile.dataset.participant === id);
  renderPeople();
}

// --- adaptive subscribing: hidden tiles pause, visible ones get a layer
// that fits their size on screen.

// The observer only says when to look again; visibility itself is measured
// when subscriptions are sent (an observer's first report, made while the
// meeting was still hidden, may be the last one a background tab gets).
const visibility = new IntersectionObserver((entries) => {
  if ($('meeting').hidden) return;
  for (const e of entries) e.target.inView = e.isIntersecting;
  scheduleSubscribe();
});

// onScreen: laid out, and not scrolled out of view. The observer's reports
// are checked against the layout, since a tab that is not shown may report
// once, wrongly, and then never again.
function onScreen(tile) {
  if (!tile.isConnected || tile.offsetParent === null) return false;
  if (tile.inView !== false) return true;
  const r = tile.getBoundingClientRect();
  const w = window.innerWidth;
  const h = window.innerHeight;
  if (!w || !h) return true;
  return r.bottom > 0 && r.right > 0 && r.top < h && r.left < w;
}
document.addEventListener('visibilitychange', scheduleSubscribe);
new ResizeObserver(() => scheduleSubscribe()).observe(document.body);

function scheduleSubscribe() {
  clearTimeout(state.subscribeTimer);
  state.subscribeTimer = setTimeout(sendSubscriptions, 300);
}

function sendSubscriptions() {
  if (!state.sig || !state.me) return;
  const subs = [];
  for (const [id, info] of state.tracks) {
    if (info.kind !== 'video' || !info.subscribed) continue;
    const tile = state.tiles.get(info.source === 'screen' ? `${info.participant}/screen` : info.participant);
    if (!tile) continue;
    const dpr = window.devicePixelRatio || 1;
    // A tile scrolled out of view is paused. A hidden browser tab is not:
    // people glance back at meetings, and a picture that must first wait
    // for a keyframe makes that feel broken.
    const visible = onScreen(tile);
    subs.push({
      trackId: id,
      paused: !visible,
      maxWidth: Math.round(tile.clientWidth * dpr) || 0,
      maxHeight: Math.round(tile.clientHeight * dpr) || 0,
    });
  }
  if (params.get('debug')) console.log('subscribe', JSON.stringify(subs));
  if (subs.length) state.sig.request({ type: 'subscribe', subscriptions: subs }).catch((e) => console.warn('subscribe', String(e)));
}

// --- the connection -----------------------------------------------------

// All negotiation work (server messages, our own offers) runs one step at a
// time: a candidate must not overtake its offer, and our offer must not
// interleave with the server's.
let chain = Promise.resolve();
function serialize(step, what) {
  chain = chain.then(step).catch((e) => console.warn('handling', what, String(e)));
  return chain;
}

function wsURL() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

async function connect() {
  const sig = new Signaling(wsURL());
  state.sig = sig;
  sig.onmessage = (m) => serialize(() => handle(m), m.type);
  sig.onclose = (e, byUs) => {
    if (byUs || state.leaving || sig !== state.sig) return;
    console.warn('signaling closed', e.code, e.reason);
    if (e.code === 1001) setStatus('Server restarting: reconnecting…', 'reconnecting');
    reconnect();
  };
  await sig.open();
  const welcome = await sig.request({ type: 'join', room: state.room, name: state.name, version: 1 });
  state.me = welcome.participant.id;
  state.members.clear();
  for (const p of welcome.members || []) state.members.set(p.id, p);
  state.tracks.clear();
  for (const t of welcome.tracks || []) state.tracks.set(t.id, t);
  setupPeerConnection(welcome.iceServers || []);
  // With tracks to receive, the server's offer comes first: publishing is
  // held until it is answered. Chromium stops gathering ICE candidates
  // for good if the very first local offer is rolled back by glare.
  state.awaitServerOffer = (welcome.tracks || []).length > 0;
  if (state.awaitServerOffer) {
    const pc = state.pc;
    setTimeout(() => {
      if (state.awaitServerOffer && pc === state.pc) {
        state.awaitServerOffer = false;
        serialize(() => offer(pc), 'own offer');
      }
    }, 3000);
  }
  const self = tileFor('self', `${state.name} (you)`, { self: true });
  self.dataset.participant = state.me;
  self.stream.getTracks().forEach((t) => self.stream.removeTrack(t));
  for (const t of state.local.getVideoTracks()) self.stream.addTrack(t);
  for (const p of state.members.values()) tileFor(p.id, p.name);
  renderPeople();
  publishLocal();
  setStatus('Connected');
  state.reconnectDelay = 1000;
}

function reconnect() {
  teardown();
  setStatus(`Connection lost: reconnecting in ${Math.round(state.reconnectDelay / 1000)} s…`, 'reconnecting');
  setTimeout(async () => {
    if (state.leaving) return;
    try {
      await connect();
    } catch (e) {
      if (e instanceof SignalError && e.code === 'room_full') {
        setStatus('Room is full', 'error');
        showMessage('meeting-message', explain(e));
        return;
      }
      state.reconnectDelay = Math.min(state.reconnectDelay * 2, 15000);
      reconnect();
    }
  }, state.reconnectDelay);
}

function teardown() {
  if (state.pc) state.pc.close();
  state.pc = null;
  state.mids.clear();
  state.pendingCandidates = [];
  state.screenSender = null;
  for (const key of [...state.tiles.keys()]) if (key !== 'self') removeTile(key);
}

function setupPeerConnection(iceServers) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  state.pc = pc;
  pc.onicecandidate = ({ candidate }) => {
    if (pc !== state.pc) return;
    if (params.get('debug')) console.log('local candidate', candidate && candidate.candidate);
    if (candidate) state.sig.send({ type: 'candidate', candidate: candidate.toJSON() });
    else state.sig.send({ type: 'end_of_candidates' });
  };
  pc.onnegotiationneeded = () => serialize(() => offer(pc), 'own offer');
  pc.ontrack = (e) => attachTrack(e);
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed' && pc === state.pc) {
      console.warn('media connection failed');
      reconnect();
    }
  };
}

// offer publishes our changes. The offer is applied locally only once the
// server accepted it: if the server was offering at the same time it
// answers "glare", we drop ours, take its offer, and offer again. (Rolling
// back a first local offer leaves Chromium's ICE gathering stuck.)
async function offer(pc) {
  if (pc !== state.pc || state.awaitServerOffer || pc.signalingState !== 'stable') return;
  const local = await pc.createOffer();
  const tracks = [];
  for (const t of pc.getTransceivers()) {
    const track = t.sender.track;
    if (!track || t.direction === 'inactive' || t.direction === 'recvonly') continue;
    tracks.push({ id: track.id, source: track === state.screenTrack ? 'screen' : track.kind === 'audio' ? 'microphone' : 'camera' });
  }
  let answer;
  try {
    answer = await state.sig.request({ type: 'offer', sdp: local.sdp, tracks });
  } catch (e) {
    if (e instanceof SignalError && e.code === 'glare') {
      // The server's offer is queued behind this step; offer again after it.
      serialize(() => offer(pc), 'own offer');
      return;
    }
    throw e;
  }
  if (pc !== state.pc || pc.signalingState !== 'stable') return;
  await pc.setLocalDescription(local);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
  await flushCandidates(pc);
}

async function flushCandidates(pc) {
  const held = state.pendingCandidates;
  state.pendingCandidates = [];
  for (const c of held) await pc.addIceCandidate(c).catch((e) => console.warn('remote candidate', String(e)));
}

function publishLocal() {
  const pc = state.pc;
  for (const track of state.local.getAudioTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
  for (const track of state.local.getVideoTracks()) {
    pc.addTransceiver(track, {
      direction: 'sendonly',
      sendEncodings: [
        { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150000 },
        { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500000 },
        { rid: 'h', maxBitrate: 1500000 },
      ],
    });
  }
}

function attachTrack(e) {
  const id = state.mids.get(e.transceiver.mid) || e.track.id;
  const info = state.tracks.get(id) || { id, participant: e.streams[0]?.id || 'unknown', kind: e.track.kind, source: e.track.kind === 'audio' ? 'microphone' : 'camera' };
  info.subscribed = true;
  state.tracks.set(id, info);
  const member = state.members.get(info.participant);
  const label = member ? member.name : 'Guest';
  const key = info.source === 'screen' ? `${info.participant}/screen` : info.participant;
  const tile = tileFor(key, info.source === 'screen' ? `${label} (screen)` : label, { stage: info.source === 'screen' });
  tile.stream.addTrack(e.track);
  tile.dataset[`track${e.track.kind === 'audio' ? 'Audio' : 'Video'}`] = id;
  applyMuted(info);
  e.track.onended = () => tile.stream.removeTrack(e.track);
  const video = tile.querySelector('video');
  video.play().catch(() => {});
  scheduleSubscribe();
}

// --- server messages ----------------------------------------------------

async function handle(m) {
  const pc = state.pc;
  switch (m.type) {
    case 'offer': {
      if (!pc) return;
      for (const [mid, id] of Object.entries(m.mids || {})) state.mids.set(mid, id);
      await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
      await pc.setLocalDescription();
      state.sig.send({ type: 'answer', sdp: pc.localDescription.sdp });
      await flushCandidates(pc);
      if (state.awaitServerOffer) {
        state.awaitServerOffer = false;
        serialize(() => offer(pc), 'own offer');
      }
      break;
    }
    case 'candidate':
      if (!pc) return;
      if (!pc.remoteDescription) state.pendingCandidates.push(m.candidate);
      else await pc.addIceCandidate(m.candidate).catch((e) => console.warn('remote candidate', String(e)));
      break;
    case 'participant_joined':
      state.members.set(m.participant.id, m.participant);
      tileFor(m.participant.id, m.participant.name);
      renderPeople();
      break;
    case 'participant_left':
      state.members.delete(m.participant.id);
      removeTile(m.participant.id);
      removeTile(`${m.participant.id}/screen`);
      if (state.speaker === m.participant.id) state.speaker = '';
      renderPeople();
      break;
    case 'track_published':
    case 'track_updated':
      state.tracks.set(m.track.id, { ...(state.tracks.get(m.track.id) || {}), ...m.track, muted: !!m.track.muted });
      applyMuted(state.tracks.get(m.track.id));
      break;
    case 'track_unpublished':
      state.tracks.delete(m.track.id);
      state.layers.delete(m.track.id);
      if (m.track.source === 'screen') removeTile(`${m.track.participant}/screen`);
      break;
    case 'active_speaker':
      setSpeaker(m.speaker);
      break;
    case 'layers':
      for (const d of m.decisions || []) state.layers.set(d.trackId, d);
      break;
    case 'chat':
      addChat(m.from, m.name, m.text);
      break;
    case 'bye':
      setStatus(m.message || 'Disconnected', m.code === 'shutting_down' ? 'reconnecting' : 'error');
      break;
    case 'error':
      console.warn('server error', m.code, m.message);
      break;
  }
}

// --- chat ---------------------------------------------------------------

function addChat(from, name, text) {
  state.chat.push({ from, name, text });
  const li = document.createElement('li');
  if (from === state.me) li.className = 'mine';
  const b = document.createElement('b');
  b.textContent = `${name}: `;
  li.append(b, document.createTextNode(text));
  $('chat-log').append(li);
  li.scrollIntoView({ block: 'end' });
}

$('chat-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('chat-input').value.trim();
  if (!text || !state.sig) return;
  $('chat-input').value = '';
  try {
    await state.sig.request({ type: 'chat', text });
    addChat(state.me, state.name, text);
  } catch (err) {
    showMessage('meeting-message', `Message not sent: ${explain(err)}`);
  }
});

// --- controls -----------------------------------------------------------

async function setMuted(kind, muted) {
  const tracks = kind === 'audio' ? state.local.getAudioTracks() : state.local.getVideoTracks();
  for (const t of tracks) t.enabled = !muted;
  const self = state.tiles.get('self');
  if (self) self.dataset[kind === 'audio' ? 'mutedAudio' : 'mutedVideo'] = String(muted);
  const btn = kind === 'audio' ? $('toggle-mic') : $('toggle-cam');
  btn.dataset.on = String(!muted);
  btn.textContent = kind === 'audio' ? (muted ? 'Unmute' : 'Mute') : (muted ? 'Start video' : 'Stop video');
  for (const t of tracks) {
    await state.sig.request({ type: 'mute', trackId: t.id, muted }).catch(() => {});
  }
}

$('toggle-mic').addEventListener('click', () => setMuted('audio', $('toggle-mic').dataset.on === 'true'));
$('toggle-cam').addEventListener('click', () => setMuted('video', $('toggle-cam').dataset.on === 'true'));

$('toggle-screen').addEventListener('click', async () => {
  if (state.screenSender) {
    stopScreen();
    return;
  }
  try {
    state.screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
  } catch {
    return;
  }
  const track = state.screen.getVideoTracks()[0];
  state.screenTrack = track;
  state.screenSender = state.pc.addTransceiver(track, { direction: 'sendonly' }).sender;
  track.onended = stopScreen;
  $('toggle-screen').textContent = 'Stop sharing';
});

function stopScreen() {
  if (state.screenSender && state.pc) state.pc.removeTrack(state.screenSender);
  if (state.screen) state.screen.getTracks().forEach((t) => t.stop());
  state.screen = null;
  state.screenSender = null;
  state.screenTrack = null;
  $('toggle-screen').textContent = 'Share screen';
}

$('toggle-stats').addEventListener('click', () => document.body.classList.toggle('show-stats'));

$('leave').addEventListener('click', () => {
  state.leaving = true;
  if (state.sig) {
    state.sig.send({ type: 'leave' });
    state.sig.close();
  }
  teardown();
  if (state.local) state.local.getTracks().forEach((t) => t.stop());
  location.href = '/';
});

$('copy-link').addEventListener('click', async () => {
  const link = `${location.origin}/r/${encodeURIComponent(state.room)}`;
  try {
    await navigator.clipboard.writeText(link);
    setStatus('Link copied');
  } catch {
    prompt('Copy this link:', link);
  }
});

// --- stats --------------------------------------------------------------

const previous = new Map();

async function updateStats() {
  const pc = state.pc;
  if (!pc) return;
  const report = await pc.getStats();
  const now = performance.now();
  report.forEach((s) => {
    if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
    const id = state.mids.get(s.mid);
    const info = id && state.tracks.get(id);
    if (!info) return;
    const tile = state.tiles.get(info.source === 'screen' ? `${info.participant}/screen` : info.participant);
    if (!tile) return;
    const prev = previous.get(s.id);
    previous.set(s.id, { bytes: s.bytesReceived, at: now });
    const kbps = prev ? Math.round(((s.bytesReceived - prev.bytes) * 8) / (now - prev.at)) : 0;
    const lost = s.packetsLost || 0;
    const lossPct = s.packetsReceived ? ((100 * lost) / (lost + s.packetsReceived)).toFixed(1) : '0.0';
    const layer = state.layers.get(id);
    tile.querySelector('.stats').textContent =
      `${s.frameWidth || 0}x${s.frameHeight || 0} ${Math.round(s.framesPerSecond || 0)} fps\n` +
      `${kbps} kbit/s, loss ${lossPct}%\n` +
      `layer ${layer ? layer.current || 'paused' : '-'}${layer && layer.target && layer.target !== layer.current ? ` → ${layer.target}` : ''}`;
  });
}
setInterval(() => updateStats().catch(() => {}), 1000);

// --- start --------------------------------------------------------------

async function join() {
  state.name = $('display-name').value.trim();
  if (!state.name) {
    showMessage('prejoin-message', 'Please enter your name.');
    return;
  }
  localStorage.setItem('confab.name', state.name);
  $('join').disabled = true;
  showMessage('prejoin-message', '');
  setStatus('Connecting…');
  try {
    if (!state.local) await startPreview();
    await connect();
    $('prejoin').hidden = true;
    $('meeting').hidden = false;
    scheduleSubscribe();
  } catch (e) {
    if (state.sig) state.sig.close();
    state.sig = null;
    teardown();
    setStatus(e.code === 'room_full' ? 'Room is full' : 'Not connected', 'error');
    showMessage('prejoin-message', explain(e));
    $('join').disabled = false;
  }
}

$('room-title').textContent = state.room;
document.title = `${state.room} · Confab`;
$('display-name').value = params.get('name') || localStorage.getItem('confab.name') || '';
$('join').addEventListener('click', join);
$('camera-select').addEventListener('change', startPreview);
$('mic-select').addEventListener('change', startPreview);

// Exposed for tests and debugging; see docs/web-client.md.
window.confab = {
  state,
  get pc() { return state.pc; },
  get participantId() { return state.me; },
  tiles: () => [...state.tiles.values()].map((t) => ({ key: t.dataset.key, participant: t.dataset.participant, name: t.querySelector('.name').textContent, mutedVideo: t.dataset.mutedVideo === 'true', mutedAudio: t.dataset.mutedAudio === 'true' })),
  chat: () => state.chat.slice(),
  join,
  setMuted,
};

if (params.get('autojoin') === '1') {
  join();
} else {
  startPreview().catch(() => {});
}
