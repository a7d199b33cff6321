// The meeting page: joins the room named in the URL with one
// RTCPeerConnection, publishes camera (three simulcast layers) and mic,
// shows everyone else, and keeps the session alive across reconnects.
// With an invitation (?token=...) the server's permissions decide: viewers
// only watch, moderators may mute and remove others. In a lecture
// (docs/lecture-client.md) a moderator moves people between the stage and
// the audience.
// Automation contract (docs/web-client.md): ?name=N&autojoin=1 joins at once.
import { Signaling, SignalError } from './signaling.js';
import { CAMERA_ENCODINGS, SCREEN_ENCODINGS, preferCodecs, listDevices, capture } from './media.js';
import { collect } from './stats.js';
import { Tiles } from './tiles.js';
import { AUTH_CODES, AUTH_MESSAGES, OPEN_PERMISSIONS, expectedPermissions, tokenClaims } from './auth.js';
import { Lecture } from './lecture.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const debug = params.get('debug') === '1';
const roomName = decodeURIComponent(location.pathname.split('/')[2] || '');
// The invitation: sent with every join. Its claims (not checked here) only
// prepare the pre-join screen; the welcome's permissions are what counts.
const token = params.get('token') || '';
const claims = tokenClaims(token);
// ?lecture=1 asks for a lecture room; the server honours it when this join
// creates the room (a token's lecture claim does the same).
const wantLecture = params.get('lecture') === '1';
// ?role=viewer joins as audience (an open room's lecture link for
// viewers); the server only ever lowers permissions this way.
const wantRole = ['viewer', 'speaker'].includes(params.get('role')) ? params.get('role') : '';

// A video tile may receive a layer up to this much larger than itself: with
// layers a factor 2 apart, the next lower one would be blurred by upscaling.
const SIZE_ALLOWANCE = 1.5;
const canShareScreen = !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
const BACKOFF_MIN = 1000;
const BACKOFF_MAX = 15000;
// Join refusals that another attempt cannot fix.
// "forbidden" on join: a moderator removed this identity from the room.
const FINAL_CODES = ['room_full', 'invalid_room', 'unsupported_version', 'forbidden', ...AUTH_CODES];

const state = {
  room: roomName,
  name: '',
  me: '',
  token,
  // what we may do: the welcome's, guessed before (a ?role=viewer link
  // watches, so its pre-join screen asks for no camera)
  perms: wantRole === 'viewer' ? { ...expectedPermissions(claims), publish: false } : expectedPermissions(claims),
  role: (claims && claims.role) || '',
  captured: false,      // camera and microphone were asked for
  captureGen: 0,        // bumped to discard a capture still in flight
  lecture: false,       // the room is a lecture (welcome.lecture)
  sig: null,
  pc: null,
  joined: false,
  local: null,          // MediaStream from getUserMedia (may have no tracks)
  notice: '',           // why some media is missing, for the user
  muted: { audio: false, video: false },
  screen: null,         // MediaStream from getDisplayMedia
  screenTrack: null,
  screenSender: null,
  tracks: new Map(),    // server track id -> track info (+ subscribed)
  mids: new Map(),      // media section -> server track id
  members: new Map(),   // participant id -> {id, name}
  layers: new Map(),    // track id -> latest layer decision
  chat: [],
  speaker: '',
  pendingCandidates: [],
  awaitServerOffer: false,
  leaving: false,
  bye: null,
  reconnectDelay: BACKOFF_MIN,
  reconnectTimer: null,
  lastSubscriptions: '',
};

const tiles = new Tiles({
  grid: $('grid'),
  stage: $('stage'),
  template: $('tile-template'),
  onChange: () => scheduleSubscribe(),
  onSoundBlocked: () => { $('sound-banner').hidden = false; },
});

const lecture = new Lecture({
  request: (m) => (state.sig && state.joined ? state.sig.request(m) : Promise.reject(new SignalError('closed', 'Not connected.'))),
  onError: (what, err) => showMessage('meeting-message', `${what}: ${explain(err)}`),
});
lecture.onChatPolicy = () => renderPermissions();

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
    room_full: 'This meeting is full. Try again later, or start another meeting.',
    invalid_room: 'That is not a valid room name: use 1-64 letters, digits, - _ or .',
    unreachable: 'The server cannot be reached. Check your connection and try again.',
    closed: 'The connection to the server closed.',
    timeout: 'The server did not answer in time.',
    shutting_down: 'The server is restarting. Try again in a moment.',
    too_many_rooms: 'The server has too many meetings right now. Try again later.',
    forbidden: 'You are not allowed to do that in this meeting.',
    ...AUTH_MESSAGES,
  };
  return codes[err.code] || err.message || String(err);
}

// explainJoin: a join refused as "forbidden" means a moderator removed
// this invitation's holder.
function explainJoin(err) {
  if (err.code === 'forbidden') return 'A moderator removed you from this meeting: you cannot join it again.';
  return explain(err);
}

// --- permissions ----------------------------------------------------------

// applyPermissions adopts what the server grants (welcome), dropping the
// camera and microphone of a participant who may not publish.
function applyPermissions(perms, role) {
  state.perms = {
    publish: !!perms.publish, subscribe: !!perms.subscribe, chat: !!perms.chat, moderate: !!perms.moderate,
  };
  state.role = role || '';
  if (!state.perms.publish) {
    if (state.local) state.local.getTracks().forEach((t) => t.stop());
    state.local = new MediaStream();
    state.notice = '';
    $('preview').srcObject = null;
    if (state.screenTrack) stopScreen();
  }
  renderPermissions();
}

// renderPermissions shows only the controls we may use: a viewer gets no
// camera, microphone or screen controls (and is told it is watching),
// chat is hidden without the chat permission, a moderator is badged.
function renderPermissions() {
  const { publish, chat, moderate } = state.perms;
  const badge = $('role-badge');
  badge.textContent = moderate ? 'Moderator' : publish ? '' : 'Watching';
  badge.dataset.role = moderate ? 'moderator' : publish ? '' : 'viewer';
  badge.hidden = !badge.textContent;
  for (const id of ['preview-box', 'pre-toggles', 'devices', 'toggle-mic', 'toggle-cam']) $(id).hidden = !publish;
  $('toggle-screen').hidden = !publish || !canShareScreen;
  $('viewer-note').hidden = publish;
  $('prejoin-note').hidden = publish;
  $('prejoin-note').textContent = publish ? '' : 'You are invited to watch and listen: your camera and microphone will not be used.';
  $('join').textContent = publish ? 'Join meeting' : 'Join to watch';
  for (const id of ['chat-title', 'chat-log']) $(id).hidden = !chat;
  // In a lecture whose audience chat is off, the audience reads but cannot write.
  $('chat-form').hidden = !chat || !lecture.mayChat();
  $('toggle-side').textContent = chat ? 'Chat' : 'People';
  lecture.setPermissions(state.perms);
}

// permissionsChanged: a moderator gave us another role. Coming on stage
// turns the camera and microphone on and publishes them; going back to the
// audience stops them (the server has already ended our tracks) and
// renegotiates without them.
function permissionsChanged(perms, role) {
  const could = state.perms.publish;
  if (could && !perms.publish) retireLocal();
  applyPermissions(perms, role);
  updateMediaButtons();
  renderPeople();
  if (!could && state.perms.publish) {
    showMessage('meeting-message', 'You are on stage: your camera and microphone are on.');
    captureLate().catch((e) => console.warn('capture', String(e)));
  } else if (could && !state.perms.publish) {
    showMessage('meeting-message', 'You are back in the audience.');
  }
}

// retireLocal takes our camera and microphone off the connection (the
// next offer has their sections inactive) and drops the self tile.
function retireLocal() {
  state.captureGen++;
  const pc = state.pc;
  const mine = new Set(state.local ? state.local.getTracks() : []);
  if (pc && pc.signalingState !== 'closed') {
    for (const sender of pc.getSenders()) if (sender.track && mine.has(sender.track)) pc.removeTrack(sender);
  }
  tiles.remove('self');
}

// hasTile: viewers are listed under People but get no tile: a lecture's
// audience would otherwise fill the speakers' screens with avatars.
function hasTile(p) {
  return p.role !== 'viewer';
}

// --- pre-join: name, preview, devices ------------------------------------

async function startPreview() {
  if (state.local) state.local.getTracks().forEach((t) => t.stop());
  state.captured = true;
  const { stream, notice } = await capture($('camera-select').value, $('mic-select').value);
  state.local = stream;
  state.notice = notice;
  applyLocalMute();
  // An element showing a stream without tracks never loads (and holds back
  // the page's load event).
  $('preview').srcObject = stream.getTracks().length ? stream : null;
  showMessage('prejoin-message', notice);
  try {
    await listDevices($('camera-select'), $('mic-select'));
  } catch (e) {
    console.warn('list devices', String(e));
  }
  updateMediaButtons();
}

// prepareMedia gets the camera and microphone before joining, unless we
// may only watch: a viewer is never asked for them.
async function prepareMedia() {
  if (state.local) return;
  if (!state.perms.publish) {
    state.local = new MediaStream();
    return;
  }
  await startPreview();
}

// captureLate publishes after all when the welcome allows what the
// invitation seemed not to.
async function captureLate() {
  state.captured = true;
  const gen = ++state.captureGen;
  const { stream, notice } = await capture('', '');
  if (!state.perms.publish || state.leaving || gen !== state.captureGen) {
    stream.getTracks().forEach((t) => t.stop());
    return;
  }
  state.local = stream;
  state.notice = notice;
  applyLocalMute();
  // Not connected now: the next join publishes it.
  if (state.pc && state.joined) {
    const self = tiles.ensure('self', { participant: state.me, name: `${state.name} (you)`, self: true });
    for (const t of stream.getVideoTracks()) tiles.addTrack(self, t);
    publishLocal(state.pc);
  }
  updateMediaButtons();
  if (notice) showMessage('meeting-message', notice);
}

function applyLocalMute() {
  if (!state.local) return;
  for (const t of state.local.getAudioTracks()) t.enabled = !state.muted.audio;
  for (const t of state.local.getVideoTracks()) t.enabled = !state.muted.video;
}

// updateMediaButtons shows the mute state on every control that has one.
function updateMediaButtons() {
  const has = (kind) => !!state.local && state.local.getTracks().some((t) => t.kind === kind);
  const set = (id, on, onText, offText, available) => {
    const b = $(id);
    b.dataset.on = String(on);
    b.setAttribute('aria-pressed', String(!on));
    b.textContent = on ? onText : offText;
    b.disabled = !available;
  };
  set('toggle-mic', !state.muted.audio, 'Mute', 'Unmute', has('audio'));
  set('toggle-cam', !state.muted.video, 'Stop video', 'Start video', has('video'));
  set('pre-mic', !state.muted.audio, 'Microphone on', 'Microphone off', has('audio'));
  set('pre-cam', !state.muted.video, 'Camera on', 'Camera off', has('video'));
  document.querySelector('.preview-box').dataset.off = String(state.muted.video || !has('video'));
  const self = tiles.get('self');
  if (self) {
    self.dataset.mutedAudio = String(state.muted.audio || !has('audio'));
    self.dataset.mutedVideo = String(state.muted.video);
  }
}

// --- adaptive subscribing: off-screen tiles pause, visible ones get a layer
// that fits their size on screen.

// onScreen: laid out and not scrolled out of view. The observer's reports
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
document.addEventListener('visibilitychange', () => scheduleSubscribe());
window.addEventListener('resize', () => scheduleSubscribe());

// A window moved to a screen of another pixel density needs other layers,
// though no element changed size.
function watchPixelRatio() {
  const query = matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
  query.addEventListener('change', () => {
    scheduleSubscribe();
    watchPixelRatio();
  }, { once: true });
}
watchPixelRatio();

let subscribeTimer = null;
function scheduleSubscribe() {
  clearTimeout(subscribeTimer);
  subscribeTimer = setTimeout(sendSubscriptions, 250);
}

function tileKey(info) {
  const screen = info.source === 'screen' || info.source === 'screen_audio';
  return screen ? `${info.participant}/screen` : info.participant;
}

function sendSubscriptions() {
  if (!state.sig || !state.joined) return;
  const dpr = window.devicePixelRatio || 1;
  const thumbnails = $('meeting').querySelector('.media-area').classList.contains('has-stage');
  const subs = [];
  for (const [id, info] of state.tracks) {
    if (info.kind !== 'video' || !info.subscribed) continue;
    const tile = tiles.get(tileKey(info));
    if (!tile) continue;
    // A hidden browser tab is not paused: people glance back at meetings,
    // and a picture that must first wait for a keyframe feels broken. A
    // camera its owner turned off sends nothing worth forwarding.
    const camera = info.source !== 'screen';
    const paused = !onScreen(tile) || (camera && !!info.muted);
    subs.push({
      trackId: id,
      paused,
      // With a screen share on the stage, camera tiles are thumbnails.
      maxLayer: camera && thumbnails ? 'low' : 'high',
      maxWidth: Math.round(tile.clientWidth * dpr * SIZE_ALLOWANCE) || 0,
      maxHeight: Math.round(tile.clientHeight * dpr * SIZE_ALLOWANCE) || 0,
    });
  }
  const text = JSON.stringify(subs);
  if (!subs.length || text === state.lastSubscriptions) return;
  state.lastSubscriptions = text;
  if (debug) console.log('subscribe', text);
  state.sig.request({ type: 'subscribe', subscriptions: subs }).catch((e) => {
    state.lastSubscriptions = '';
    console.warn('subscribe', String(e));
  });
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
  state.bye = null;
  state.lastSubscriptions = '';
  sig.onmessage = (m) => {
    if (sig !== state.sig) return;
    // A bye is acted on at once: the socket closes right after it, maybe
    // before queued negotiation steps have run.
    if (m.type === 'bye') byeReceived(m);
    else serialize(() => handle(m), m.type);
  };
  sig.onclose = (e, byUs) => signalClosed(sig, e, byUs);
  let welcome;
  try {
    await sig.open();
    const join = { type: 'join', room: state.room, name: state.name, version: 1 };
    if (state.token) join.token = state.token;
    if (wantLecture) join.lecture = true;
    if (wantRole) join.role = wantRole;
    welcome = await sig.request(join);
  } catch (e) {
    sig.close();
    if (state.sig === sig) state.sig = null;
    throw e;
  }
  state.me = welcome.participant.id;
  // An invitation may carry the name, which the server then uses.
  if (welcome.participant.name) state.name = welcome.participant.name;
  state.lecture = !!welcome.lecture;
  tiles.setLecture(state.lecture);
  lecture.start(welcome);
  applyPermissions(welcome.permissions || OPEN_PERMISSIONS, welcome.participant.role);
  state.members.clear();
  for (const p of welcome.members || []) state.members.set(p.id, p);
  state.tracks.clear();
  for (const t of welcome.tracks || []) state.tracks.set(t.id, { ...t, muted: !!t.muted });
  const pc = setupPeerConnection(welcome.iceServers || []);
  // With tracks to receive, the server's offer comes first: publishing is
  // held until it is answered (or 3 s passed). Chromium stops gathering
  // ICE candidates for good if its very first local offer is rolled back.
  state.awaitServerOffer = (welcome.tracks || []).length > 0;
  if (state.awaitServerOffer) {
    setTimeout(() => {
      if (state.awaitServerOffer && pc === state.pc) {
        state.awaitServerOffer = false;
        serialize(() => offer(pc), 'own offer');
      }
    }, 3000);
  }
  if (state.perms.publish) {
    const self = tiles.ensure('self', { participant: state.me, name: `${state.name} (you)`, self: true });
    self.dataset.participant = state.me;
    for (const t of state.local.getVideoTracks()) tiles.addTrack(self, t);
  } else {
    tiles.remove('self');
  }
  for (const p of state.members.values()) if (hasTile(p)) tiles.ensure(p.id, { participant: p.id, name: p.name });
  for (const t of state.tracks.values()) applyMuted(t);
  publishLocal(pc);
  state.joined = true;
  renderPeople();
  updateMediaButtons();
  setStatus('Connected');
  if (state.perms.publish && !state.captured) captureLate().catch((e) => console.warn('capture', String(e)));
}

// byeReceived: the server is closing our connection. Removal by a
// moderator ends the meeting here at once, with no reconnect; other codes
// are acted on when the socket closes (signalClosed).
function byeReceived(m) {
  state.bye = m;
  if (m.code === 'removed') endMeeting('removed', AUTH_MESSAGES.removed);
}

function signalClosed(sig, e, byUs) {
  if (byUs || state.leaving || sig !== state.sig || !state.joined) return;
  console.warn('signaling closed', e.code, e.reason);
  const bye = state.bye;
  if (bye && bye.code && bye.code !== 'shutting_down') {
    // Removed on purpose: coming back would be wrong.
    dropConnection();
    setStatus('Disconnected', 'error');
    showMessage('meeting-message', AUTH_MESSAGES[bye.code] || bye.message || explain(bye));
    return;
  }
  scheduleReconnect(e.code === 1001 || (bye && bye.code === 'shutting_down') ? 'The server is restarting' : 'Connection lost');
}

// scheduleReconnect drops the session and joins again after a backoff
// delay (1 s doubling to 15 s) with a new PeerConnection.
function scheduleReconnect(why) {
  if (state.leaving || state.reconnectTimer) return;
  dropConnection();
  const delay = state.reconnectDelay;
  state.reconnectDelay = Math.min(delay * 2, BACKOFF_MAX);
  const until = Date.now() + delay;
  const tick = () => {
    const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    setStatus(`${why}: reconnecting in ${s} s…`, 'reconnecting');
  };
  tick();
  const countdown = setInterval(tick, 1000);
  state.reconnectTimer = setTimeout(() => {
    clearInterval(countdown);
    state.reconnectTimer = null;
    attemptReconnect(why);
  }, delay);
  state.reconnectTimer.countdown = countdown;
}

async function attemptReconnect(why) {
  if (state.leaving) return;
  setStatus('Reconnecting…', 'reconnecting');
  try {
    await connect();
    showMessage('meeting-message', '');
  } catch (e) {
    if (e instanceof SignalError && FINAL_CODES.includes(e.code)) {
      setStatus('Not connected', 'error');
      showMessage('meeting-message', explainJoin(e));
      return;
    }
    console.warn('reconnect', String(e));
    scheduleReconnect(e.code === 'unreachable' ? 'Server unreachable' : why);
  }
}

// Back online: try at once instead of waiting out the backoff.
window.addEventListener('online', () => {
  const timer = state.reconnectTimer;
  if (!timer) return;
  clearTimeout(timer);
  clearInterval(timer.countdown);
  state.reconnectTimer = null;
  attemptReconnect('Connection lost');
});

// dropConnection forgets the server session, keeping local media, the
// chat history and our own tiles.
function dropConnection() {
  state.joined = false;
  if (state.sig) state.sig.close();
  state.sig = null;
  if (state.pc) state.pc.close();
  state.pc = null;
  state.mids.clear();
  state.tracks.clear();
  state.layers.clear();
  state.members.clear();
  state.pendingCandidates = [];
  state.awaitServerOffer = false;
  state.screenSender = null;
  state.speaker = '';
  tiles.removeRemote();
  tiles.setSpeaker('');
  lecture.stop();
  renderPeople();
}

function setupPeerConnection(iceServers) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  state.pc = pc;
  pc.onicecandidate = ({ candidate }) => {
    if (pc !== state.pc || !state.sig) return;
    if (debug) console.log('local candidate', candidate && candidate.candidate);
    if (candidate) state.sig.send({ type: 'candidate', candidate: candidate.toJSON() });
    else state.sig.send({ type: 'end_of_candidates' });
  };
  pc.onnegotiationneeded = () => serialize(() => offer(pc), 'own offer');
  pc.ontrack = (e) => {
    if (pc === state.pc) attachTrack(e);
  };
  pc.onconnectionstatechange = () => {
    if (pc !== state.pc) return;
    if (debug) console.log('connection', pc.connectionState);
    if (pc.connectionState === 'connected') state.reconnectDelay = BACKOFF_MIN;
    if (pc.connectionState === 'failed') {
      console.warn('media connection failed');
      scheduleReconnect('Media connection failed');
    }
  };
  return pc;
}

// offer publishes our changes. The offer is applied locally only once the
// server accepted it: if the server was offering at the same time it
// answers "glare", we drop ours, take its offer (queued behind this step),
// and offer again. Rolling back a first local offer leaves Chromium's ICE
// gathering stuck, so there is nothing to roll back.
async function offer(pc) {
  if (pc !== state.pc || state.awaitServerOffer || pc.signalingState !== 'stable') return;
  // Who may not publish has nothing to offer (the server's offers carry
  // what we receive), unless it was moved to the audience and must end
  // what it sent.
  if (!state.perms.publish && !retiring(pc)) return;
  const local = await pc.createOffer();
  const tracks = [];
  for (const t of pc.getTransceivers()) {
    const track = t.sender.track;
    if (!track || t.direction === 'inactive' || t.direction === 'recvonly') continue;
    let source = track.kind === 'audio' ? 'microphone' : 'camera';
    if (track === state.screenTrack) source = 'screen';
    tracks.push({ id: track.id, source });
  }
  let answer;
  try {
    answer = await state.sig.request({ type: 'offer', sdp: local.sdp, tracks });
  } catch (e) {
    if (e instanceof SignalError && e.code === 'glare') {
      serialize(() => offer(pc), 'own offer');
      return;
    }
    throw e;
  }
  if (pc !== state.pc || pc.signalingState !== 'stable') return;
  await pc.setLocalDescription(local);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
  await flushCandidates(pc);
  announceMuted();
}

// retiring: a section we sent on has lost its track, and the server has
// not yet been told.
function retiring(pc) {
  return pc.getTransceivers().some((t) => !t.sender.track && (t.currentDirection === 'sendonly' || t.currentDirection === 'sendrecv'));
}

async function flushCandidates(pc) {
  const held = state.pendingCandidates;
  state.pendingCandidates = [];
  for (const c of held) await pc.addIceCandidate(c).catch((e) => console.warn('remote candidate', String(e)));
}

function publishLocal(pc) {
  for (const track of state.local.getAudioTracks()) {
    preferCodecs(pc.addTransceiver(track, { direction: 'sendonly' }), 'audio');
  }
  for (const track of state.local.getVideoTracks()) {
    const sendEncodings = CAMERA_ENCODINGS.map((e) => ({ ...e }));
    preferCodecs(pc.addTransceiver(track, { direction: 'sendonly', sendEncodings }), 'video');
  }
  if (state.screenTrack) addScreen(pc);
}

function addScreen(pc) {
  const sendEncodings = SCREEN_ENCODINGS.map((e) => ({ ...e }));
  const t = pc.addTransceiver(state.screenTrack, { direction: 'sendonly', sendEncodings });
  preferCodecs(t, 'video');
  state.screenSender = t.sender;
}

// announceMuted tells the server which published tracks are muted: after
// every accepted offer, since a rejoin publishes new tracks unmuted.
function announceMuted() {
  for (const kind of ['audio', 'video']) {
    if (!state.muted[kind]) continue;
    const tracks = kind === 'audio' ? state.local.getAudioTracks() : state.local.getVideoTracks();
    for (const t of tracks) sendMute(t, true);
  }
}

// sendMute announces one track's state. The server knows a track only once
// its media arrives, shortly after the offer was answered, and does not tell
// the publisher: an unknown track is retried for a while.
function sendMute(track, muted, attempt = 0) {
  const sig = state.sig;
  if (!sig || !state.joined) return;
  sig.request({ type: 'mute', trackId: track.id, muted }).catch((e) => {
    const kind = track.kind === 'audio' ? 'audio' : 'video';
    const current = sig === state.sig && state.muted[kind] === muted;
    if (e.code === 'unknown_track' && current && attempt < 20) {
      setTimeout(() => sendMute(track, muted, attempt + 1), 500);
      return;
    }
    if (current) console.warn('mute', String(e));
  });
}

function attachTrack(e) {
  const id = state.mids.get(e.transceiver.mid) || e.track.id;
  let info = state.tracks.get(id);
  if (!info) {
    // Not announced (yet): the stream id is the publisher's id.
    info = { id, participant: (e.streams[0] && e.streams[0].id) || 'unknown', kind: e.track.kind, source: e.track.kind === 'audio' ? 'microphone' : 'camera' };
  }
  info.subscribed = true;
  state.tracks.set(id, info);
  const member = state.members.get(info.participant);
  const label = member ? member.name : 'Guest';
  const key = tileKey(info);
  const screen = key.endsWith('/screen');
  const tile = tiles.ensure(key, { participant: info.participant, name: screen ? `${label} (screen)` : label, screen });
  tiles.addTrack(tile, e.track);
  tile.dataset[e.track.kind === 'audio' ? 'trackAudio' : 'trackVideo'] = id;
  applyMuted(info);
  const detach = () => tiles.removeTrack(tile, e.track);
  e.track.addEventListener('ended', detach);
  if (e.streams[0]) {
    e.streams[0].addEventListener('removetrack', (ev) => {
      if (ev.track === e.track) detach();
    });
  }
  scheduleSubscribe();
}

function applyMuted(info) {
  const tile = tiles.get(tileKey(info));
  if (!tile || info.participant === state.me) return;
  if (info.kind === 'audio') tile.dataset.mutedAudio = String(!!info.muted);
  else if (info.source !== 'screen') tile.dataset.mutedVideo = String(!!info.muted);
  renderPeople();
}

// --- server messages ----------------------------------------------------

async function handle(m) {
  const pc = state.pc;
  switch (m.type) {
    case 'offer': {
      if (!pc) return;
      state.mids = new Map(Object.entries(m.mids || {}));
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
    case 'end_of_candidates':
      break;
    case 'participant_joined':
      state.members.set(m.participant.id, m.participant);
      if (hasTile(m.participant)) tiles.ensure(m.participant.id, { participant: m.participant.id, name: m.participant.name });
      // In a lecture only the stage is announced.
      addSystemLine(state.lecture ? `${m.participant.name} is on stage` : `${m.participant.name} joined`);
      renderPeople();
      break;
    case 'participant_left': {
      const p = state.members.get(m.participant.id) || m.participant;
      state.members.delete(m.participant.id);
      tiles.remove(m.participant.id);
      tiles.remove(`${m.participant.id}/screen`);
      for (const [id, t] of state.tracks) if (t.participant === m.participant.id) state.tracks.delete(id);
      if (state.speaker === m.participant.id) setSpeaker('');
      addSystemLine(state.lecture ? `${p.name} left the stage` : `${p.name} left`);
      renderPeople();
      break;
    }
    case 'track_published':
    case 'track_updated': {
      if (state.me && m.track.participant === state.me) {
        ownTrackUpdated(m.track);
        break;
      }
      const info = { ...(state.tracks.get(m.track.id) || {}), ...m.track, muted: !!m.track.muted };
      state.tracks.set(m.track.id, info);
      applyMuted(info);
      renderPeople(); // a moderator's Mute button follows the track
      scheduleSubscribe();
      break;
    }
    case 'track_unpublished': {
      const info = state.tracks.get(m.track.id) || m.track;
      state.tracks.delete(m.track.id);
      state.layers.delete(m.track.id);
      if (info.source === 'screen') tiles.remove(`${info.participant}/screen`);
      else if (info.kind === 'audio') {
        const tile = tiles.get(info.participant);
        if (tile) tile.dataset.mutedAudio = 'false';
      }
      renderPeople();
      break;
    }
    case 'active_speaker':
      setSpeaker(m.speaker || '');
      break;
    case 'layers':
      for (const d of m.decisions || []) state.layers.set(d.trackId, d);
      break;
    case 'chat':
      addChat(m.from, m.name, m.text);
      break;
    case 'audience':
      lecture.setAudience(m.audience);
      break;
    case 'hand':
      lecture.hand(m.participant, !!m.raised);
      break;
    case 'permissions':
      if (m.permissions) permissionsChanged(m.permissions, m.role);
      if (m.hands) for (const p of m.hands) lecture.hand(p, true);
      break;
    case 'lecture_settings':
      lecture.chatPolicy(m.audienceChat);
      addSystemLine(m.audienceChat ? 'The audience may write in the chat again' : 'The moderators turned the audience\'s chat off');
      break;
    case 'error':
      console.warn('server error', m.code, m.message);
      break;
    default:
      if (debug) console.log('ignored message', m.type);
  }
}

// ownTrackUpdated: a moderator muted one of our tracks. The server stopped
// forwarding it; we mute it here too, so the controls tell the truth and
// unmuting works as usual (it sends mute false, which the owner may).
function ownTrackUpdated(t) {
  if (!t.muted || !t.mutedBy) return;
  const by = state.members.get(t.mutedBy);
  const who = by ? ` (${by.name})` : '';
  if (t.source === 'screen' || t.source === 'screen_audio') {
    if (state.screenTrack) stopScreen();
    showMessage('meeting-message', `A moderator stopped your screen share${who}.`);
    return;
  }
  const kind = t.kind === 'video' ? 'video' : 'audio';
  state.muted[kind] = true;
  applyLocalMute();
  updateMediaButtons();
  renderPeople();
  showMessage('meeting-message', kind === 'audio'
    ? `A moderator muted you${who}. Unmute when you want to speak.`
    : `A moderator turned off your camera${who}. Start it again when you are ready.`);
}

function setSpeaker(id) {
  state.speaker = id;
  tiles.setSpeaker(id);
  renderPeople();
}

// --- people and chat ----------------------------------------------------

// renderPeople lists everyone with their role and mic/camera state; a
// moderator gets Mute and Remove buttons on the others. Rows are updated
// in place, so a button is not replaced under a pointer when someone
// starts speaking.
function renderPeople() {
  const ul = $('people');
  const all = state.joined || state.me ? [{ id: state.me, name: `${state.name} (you)`, role: state.role }, ...state.members.values()] : [];
  const old = new Map([...ul.children].map((li) => [li.dataset.participant, li]));
  const items = all.map((p) => {
    const view = personView(p);
    const key = JSON.stringify(view);
    let li = old.get(p.id);
    old.delete(p.id);
    if (!li || li.dataset.view !== key) {
      const fresh = personItem(p, view);
      fresh.dataset.view = key;
      if (li) li.replaceWith(fresh);
      li = fresh;
    }
    li.dataset.speaking = String(!!p.id && p.id === state.speaker);
    return li;
  });
  for (const li of old.values()) li.remove();
  items.forEach((li, i) => {
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
  });
  $('people-count').textContent = all.length ? `(${all.length})` : '';
}

// micTracks: a participant's microphone tracks as we know them.
function micTracks(participant) {
  return [...state.tracks.values()].filter((t) => t.participant === participant && t.kind === 'audio' && t.source === 'microphone');
}

function personView(p) {
  const self = p.id === state.me;
  const tile = tiles.get(self ? 'self' : p.id);
  const off = [];
  if (tile && tile.dataset.mutedAudio === 'true') off.push('mic off');
  if (tile && tile.dataset.mutedVideo === 'true') off.push('cam off');
  const view = { name: p.name, role: p.role || '', off: off.join(' · ') };
  if (state.perms.moderate && state.joined && !self) {
    const mics = micTracks(p.id);
    // mute: "none" (nothing to mute), "muted" or "on".
    view.mute = !mics.length ? 'none' : mics.every((t) => t.muted) ? 'muted' : 'on';
    view.remove = true;
    // A lecture's stage members may be sent back to the audience.
    view.demote = state.lecture && p.role !== 'moderator';
  }
  return view;
}

function personItem(p, view) {
  const li = document.createElement('li');
  li.dataset.participant = p.id;
  if (view.role) li.dataset.role = view.role;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = view.name;
  li.append(who);
  if (view.role === 'viewer' || view.role === 'moderator') {
    const r = document.createElement('span');
    r.className = 'role';
    r.textContent = view.role;
    li.append(r);
  }
  if (view.off) {
    const s = document.createElement('span');
    s.className = 'state';
    s.textContent = view.off;
    li.append(s);
  }
  const button = (action, text, label, disabled) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `small ${action}`;
    b.dataset.action = action;
    b.textContent = text;
    b.title = label;
    b.setAttribute('aria-label', label);
    b.disabled = disabled;
    li.append(b);
  };
  if (view.mute && (view.mute !== 'none' || view.role !== 'viewer')) {
    const muted = view.mute === 'muted';
    button('mute', muted ? 'Muted' : 'Mute', muted ? `${p.name} is muted` : `Mute ${p.name}`, view.mute !== 'on');
  }
  if (view.demote) button('demote', 'Move to audience', `Move ${p.name} to the audience`, false);
  if (view.remove) button('remove', 'Remove', `Remove ${p.name} from the meeting`, false);
  return li;
}

// Moderator actions. No confirmation dialog: the buttons sit apart from
// the names, and a removed person can be invited again with a new link.
$('people').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-action]');
  const li = b && b.closest('li');
  if (!li || b.disabled) return;
  if (b.dataset.action === 'remove' || b.dataset.action === 'demote') b.disabled = true;
  moderate(b.dataset.action, li.dataset.participant);
});

// moderate mutes a participant's microphone ("mute"), removes them from
// the meeting ("remove") or moves them to a lecture's audience ("demote").
// Failures are shown, not thrown.
async function moderate(action, participant) {
  const p = state.members.get(participant);
  const name = p ? p.name : 'that participant';
  if (!state.sig || !state.joined || !state.perms.moderate) return false;
  try {
    if (action === 'mute') {
      const mics = micTracks(participant).filter((t) => !t.muted);
      if (!mics.length) return false;
      await Promise.all(mics.map((t) => state.sig.request({ type: 'mute', trackId: t.id, muted: true })));
    } else if (action === 'remove') {
      await state.sig.request({ type: 'remove', participantId: participant });
    } else if (action === 'demote') {
      await state.sig.request({ type: 'promote', participantId: participant, role: 'viewer' });
    } else {
      return false;
    }
    return true;
  } catch (err) {
    const what = action === 'demote' ? `move ${name} to the audience` : `${action} ${name}`;
    showMessage('meeting-message', `Could not ${what}: ${explain(err)}`);
    const button = $('people').querySelector(`li[data-participant="${CSS.escape(participant)}"] button[data-action="${action}"]`);
    if (button && action !== 'mute') button.disabled = false;
    renderPeople();
    return false;
  }
}

function appendChatLine(li) {
  const log = $('chat-log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function addChat(from, name, text) {
  state.chat.push({ from, name, text, at: Date.now() });
  const li = document.createElement('li');
  if (from === state.me) li.className = 'mine';
  const b = document.createElement('b');
  b.textContent = `${name}: `;
  li.append(b, document.createTextNode(text));
  appendChatLine(li);
}

function addSystemLine(text) {
  const li = document.createElement('li');
  li.className = 'system';
  li.textContent = text;
  appendChatLine(li);
}

$('chat-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('chat-input').value.trim();
  if (!text) return;
  if (!state.sig || !state.joined) {
    showMessage('meeting-message', 'Not connected: the message was not sent.');
    return;
  }
  $('chat-input').value = '';
  try {
    await state.sig.request({ type: 'chat', text });
    addChat(state.me, state.name, text);
    showMessage('meeting-message', '');
  } catch (err) {
    $('chat-input').value = text;
    showMessage('meeting-message', `Message not sent: ${explain(err)}`);
  }
});

// --- controls -----------------------------------------------------------

async function setMuted(kind, muted) {
  state.muted[kind] = muted;
  applyLocalMute();
  updateMediaButtons();
  renderPeople();
  const tracks = kind === 'audio' ? state.local.getAudioTracks() : state.local.getVideoTracks();
  for (const t of tracks) sendMute(t, muted);
}

$('toggle-mic').addEventListener('click', () => setMuted('audio', !state.muted.audio));
$('toggle-cam').addEventListener('click', () => setMuted('video', !state.muted.video));
$('pre-mic').addEventListener('click', () => setMuted('audio', !state.muted.audio));
$('pre-cam').addEventListener('click', () => setMuted('video', !state.muted.video));

async function startScreen() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
  } catch (e) {
    if (e.name !== 'NotAllowedError' && e.name !== 'AbortError') showMessage('meeting-message', `Screen sharing failed: ${e.message}`);
    return;
  }
  const track = stream.getVideoTracks()[0];
  if ('contentHint' in track) track.contentHint = 'detail';
  state.screen = stream;
  state.screenTrack = track;
  track.addEventListener('ended', stopScreen);
  const tile = tiles.ensure('self/screen', { participant: state.me, name: 'Your screen', screen: true });
  tiles.addTrack(tile, track);
  if (state.pc) addScreen(state.pc);
  $('toggle-screen').textContent = 'Stop sharing';
  $('toggle-screen').setAttribute('aria-pressed', 'true');
}

function stopScreen() {
  if (state.screenSender && state.pc && state.pc.signalingState !== 'closed') state.pc.removeTrack(state.screenSender);
  if (state.screen) state.screen.getTracks().forEach((t) => t.stop());
  state.screen = null;
  state.screenSender = null;
  state.screenTrack = null;
  tiles.remove('self/screen');
  $('toggle-screen').textContent = 'Share screen';
  $('toggle-screen').setAttribute('aria-pressed', 'false');
}

$('toggle-screen').addEventListener('click', () => (state.screenTrack ? stopScreen() : startScreen()));

$('toggle-stats').addEventListener('click', () => {
  const on = document.body.classList.toggle('show-stats');
  $('toggle-stats').setAttribute('aria-pressed', String(on));
  if (on) refreshStats();
});

$('toggle-side').addEventListener('click', () => {
  const hidden = $('meeting').classList.toggle('no-side');
  $('toggle-side').setAttribute('aria-pressed', String(!hidden));
});

// Notices stay until read: a click dismisses them.
$('meeting-message').addEventListener('click', () => showMessage('meeting-message', ''));

$('enable-sound').addEventListener('click', () => {
  tiles.unblockSound();
  $('sound-banner').hidden = true;
});

// endMeeting closes the session for good and shows the end card: we left
// ("left", with a way back) or a moderator removed us ("removed").
function endMeeting(reason, title) {
  state.leaving = true;
  if (state.reconnectTimer) {
    clearTimeout(state.reconnectTimer);
    clearInterval(state.reconnectTimer.countdown);
    state.reconnectTimer = null;
  }
  if (state.sig && reason === 'left') state.sig.send({ type: 'leave' });
  dropConnection();
  stopScreen();
  tiles.remove('self');
  if (state.local) state.local.getTracks().forEach((t) => t.stop());
  $('preview').srcObject = null;
  $('prejoin').hidden = true;
  $('meeting').hidden = true;
  $('left').hidden = false;
  $('left').dataset.reason = reason;
  $('left-title').textContent = title;
  // The invitation comes along: it is what lets us in again.
  const again = new URLSearchParams();
  if (state.token) again.set('token', state.token);
  if (wantLecture) again.set('lecture', '1');
  const query = again.toString();
  $('rejoin').href = `/r/${encodeURIComponent(state.room)}${query ? `?${query}` : ''}`;
  $('rejoin').hidden = reason === 'removed';
  setStatus('');
}

function leave() {
  endMeeting('left', 'You left the meeting');
}
$('leave').addEventListener('click', leave);

$('copy-link').addEventListener('click', async () => {
  const link = `${location.origin}/r/${encodeURIComponent(state.room)}`;
  try {
    await navigator.clipboard.writeText(link);
    $('copy-link').textContent = 'Link copied';
  } catch {
    window.prompt('Copy this link and send it to the people you invite:', link);
  }
  setTimeout(() => { $('copy-link').textContent = 'Copy link'; }, 2000);
});

// --- stats --------------------------------------------------------------

async function refreshStats() {
  const pc = state.pc;
  if (!pc || !document.body.classList.contains('show-stats')) return;
  const panels = await collect(pc, {
    inbound: (mid) => {
      const id = state.mids.get(mid);
      const info = id && state.tracks.get(id);
      return info ? { id, key: tileKey(info) } : null;
    },
    outbound: (mid) => {
      const t = pc.getTransceivers().find((x) => x.mid === mid);
      if (!t || !t.sender.track) return null;
      return t.sender.track === state.screenTrack ? 'self/screen' : 'self';
    },
    layer: (id) => state.layers.get(id),
  });
  for (const tile of tiles.all()) tile.querySelector('.stats').textContent = panels.get(tile.dataset.key) || '';
}
setInterval(() => refreshStats().catch((e) => console.warn('stats', String(e))), 1000);

// --- start --------------------------------------------------------------

async function join() {
  state.name = $('display-name').value.trim();
  if (!state.name) {
    showMessage('prejoin-message', 'Please enter your name.');
    $('display-name').focus();
    return;
  }
  try {
    localStorage.setItem('confab.name', state.name);
  } catch {
    // Storage may be disabled; the name is only a convenience.
  }
  $('join').disabled = true;
  showMessage('prejoin-message', '');
  setStatus('Connecting…', 'idle');
  try {
    await prepareMedia();
    await connect();
    $('prejoin').hidden = true;
    $('meeting').hidden = false;
    $('preview').srcObject = null;
    showMessage('prejoin-message', '');
    showMessage('meeting-message', state.notice);
    tiles.layout();
    scheduleSubscribe();
  } catch (e) {
    dropConnection();
    setStatus(e.code === 'room_full' ? 'Room is full' : 'Not connected', 'error');
    showMessage('prejoin-message', explainJoin(e));
    // Without a valid invitation, trying again cannot help, and the camera
    // has no reason to stay on.
    const refused = AUTH_CODES.includes(e.code) || e.code === 'forbidden';
    if (refused && state.local) {
      state.local.getTracks().forEach((t) => t.stop());
      state.local = null;
      $('preview').srcObject = null;
      updateMediaButtons();
    }
    $('join').disabled = refused;
  }
}

$('room-title').textContent = state.room;
document.title = `${state.room} · Confab`;
let remembered = '';
try {
  remembered = localStorage.getItem('confab.name') || '';
} catch {
  // Storage may be disabled.
}
// A name in the invitation is the one the server uses.
if (claims && typeof claims.name === 'string' && claims.name.trim()) {
  $('display-name').value = claims.name.trim();
  $('display-name').readOnly = true;
} else {
  $('display-name').value = params.get('name') || remembered;
}
if (state.token) $('copy-link').title = 'Copy the meeting link (everyone needs their own invitation to join)';
renderPermissions();
$('prejoin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  join();
});
$('camera-select').addEventListener('change', () => startPreview());
$('mic-select').addEventListener('change', () => startPreview());

// Exposed for tests and debugging; see docs/web-client.md.
window.confab = {
  state,
  get pc() { return state.pc; },
  get participantId() { return state.me; },
  status: () => ({ text: $('status').textContent, state: $('status').dataset.state }),
  tiles: () => tiles.all().map((t) => ({
    key: t.dataset.key,
    participant: t.dataset.participant,
    source: t.dataset.source,
    name: t.querySelector('.name').textContent,
    hasVideo: t.dataset.hasVideo === 'true',
    mutedVideo: t.dataset.mutedVideo === 'true',
    mutedAudio: t.dataset.mutedAudio === 'true',
    speaking: t.dataset.speaking === 'true',
    width: t.clientWidth,
    height: t.clientHeight,
  })),
  chat: () => state.chat.map(({ from, name, text }) => ({ from, name, text })),
  get permissions() { return { ...state.perms }; },
  get role() { return state.role; },
  join,
  leave,
  setMuted,
  muteParticipant: (id) => moderate('mute', id),
  removeParticipant: (id) => moderate('remove', id),
  get lecture() {
    return { active: lecture.active, audience: lecture.audience, raised: lecture.raised, hands: [...lecture.hands.values()] };
  },
  raiseHand: (raised) => lecture.raiseHand(raised),
  promote: (id, role) => lecture.promote(id, role),
};

if (params.get('autojoin') === '1' && $('display-name').value.trim()) {
  join();
} else if (state.perms.publish) {
  startPreview().catch((e) => showMessage('prejoin-message', explain(e)));
}
