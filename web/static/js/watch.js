// The player of /watch/{room}: receives one participant's audio and video
// over WHEP (POST /whep/{room}, docs/broadcasting.md) and shows them in a
// full-window video, for embedding in an iframe.
//
// Page URL options: ?token= (sent as a Bearer token), ?participant=P… and
// ?source=camera|screen (passed on to the server), ?debug=1 (console log).
//
// States (#watch-status data-state): connecting, waiting (nothing is
// published yet, or the broadcast stopped: retried), playing (overlay
// hidden), ended (stopped by the page), error (retried, except for
// invitation problems).

const params = new URLSearchParams(location.search);
const room = decodeURIComponent(location.pathname.split('/')[2] || '');
const token = params.get('token') || '';
const debug = params.get('debug') === '1';

const video = document.getElementById('watch-video');
const overlay = document.getElementById('watch-status');
const overlayText = document.getElementById('watch-status-text');
const unmuteButton = document.getElementById('watch-unmute');

const WAITING_RETRY_MS = 3000; // a 404: nothing is published yet
const MIN_BACKOFF_MS = 1000; // after a failure, doubling...
const MAX_BACKOFF_MS = 10000; // ...up to this
const GATHER_CAP_MS = 2000; // the offer goes out complete, or after this
const CONNECT_TIMEOUT_MS = 15000; // from the answer to the first frame
const DISCONNECT_GRACE_MS = 2000; // "disconnected" may recover by itself
const STALL_MS = 15000; // no media at all for this long: reconnect

const TEXT = {
  connecting: 'Connecting…',
  waiting: 'Waiting for the broadcast to start…',
  stopped: 'The broadcast has stopped. Waiting for it to start again…',
  auth: 'This stream needs a valid invitation link.',
  full: 'Too many people are watching right now. Trying again…',
  unreachable: 'The server cannot be reached. Trying again…',
  failed: 'The player could not connect. Trying again…',
  ended: 'Playback stopped.',
};

let state = 'connecting';
let pc = null;
let sessionUrl = '';
let generation = 0; // each connection attempt; stale callbacks check it
let retryTimer = 0;
let watchTimer = 0;
let backoff = MIN_BACKOFF_MS;
let refused = false; // an invitation problem: never retried
let stream = null; // what the current connection shows
// ICE servers from the last answer's Link headers (RFC 9725). The first
// offer has none: they only come back with the answer. A server with a
// public address needs none; behind NAT the next attempt uses them.
let iceServers = [];

const log = (...args) => { if (debug) console.log('[watch]', ...args); };

function setState(next, text) {
  if (state !== next) log('state', state, '->', next);
  state = next;
  overlay.dataset.state = next;
  overlayText.textContent = text;
  updateUnmute();
}

function updateUnmute() {
  unmuteButton.hidden = !(state === 'playing' && video.muted);
}

function whepUrl() {
  const q = new URLSearchParams();
  for (const k of ['participant', 'source']) {
    if (params.get(k)) q.set(k, params.get(k));
  }
  const s = q.toString();
  return `/whep/${encodeURIComponent(room)}${s ? '?' + s : ''}`;
}

function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// deleteSession ends a session on the server (keepalive: it must survive
// the page being unloaded).
function deleteSession(url) {
  if (!url) return;
  fetch(url, { method: 'DELETE', headers: authHeaders(), keepalive: true }).catch(() => {});
}

// teardown drops the current connection, if any.
function teardown() {
  clearInterval(watchTimer);
  watchTimer = 0;
  if (pc) {
    pc.ontrack = pc.onconnectionstatechange = null;
    pc.close();
    pc = null;
  }
  stream = null;
  video.srcObject = null;
  deleteSession(sessionUrl);
  sessionUrl = '';
}

function retry(ms) {
  clearTimeout(retryTimer);
  log('retry in', ms, 'ms');
  retryTimer = setTimeout(connect, ms);
}

// fail retries after the current backoff, which then doubles.
function fail(next, text) {
  teardown();
  setState(next, text);
  retry(backoff);
  backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
}

// lost: the media of a connection that was set up stopped (the presenter
// left, the network dropped, nothing arrives any more).
function lost(gen, why) {
  if (gen !== generation) return;
  log('connection lost:', why);
  generation++;
  fail('waiting', state === 'playing' ? TEXT.stopped : TEXT.waiting);
}

function gathered(conn) {
  if (conn.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(cap); conn.removeEventListener('icegatheringstatechange', check); resolve(); };
    const check = () => { if (conn.iceGatheringState === 'complete') done(); };
    const cap = setTimeout(done, GATHER_CAP_MS);
    conn.addEventListener('icegatheringstatechange', check);
  });
}

function newPeerConnection() {
  const config = { bundlePolicy: 'max-bundle', iceServers };
  try {
    return new RTCPeerConnection(config);
  } catch (err) {
    log('ICE servers refused, trying without:', err);
    iceServers = [];
    return new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  }
}

// connect opens a new session: a receive-only PeerConnection whose offer
// is POSTed to the WHEP endpoint.
async function connect() {
  clearTimeout(retryTimer);
  teardown();
  refused = false;
  const gen = ++generation;
  if (state !== 'waiting') setState('connecting', TEXT.connecting);
  const conn = newPeerConnection();
  pc = conn;
  conn.addTransceiver('audio', { direction: 'recvonly' });
  conn.addTransceiver('video', { direction: 'recvonly' });
  stream = new MediaStream();
  follow(gen, conn, stream);
  const resp = await post(gen, conn);
  if (!resp) return;
  if (resp.status !== 201 && resp.status !== 200) {
    await refusal(gen, resp);
    return;
  }
  setState('connecting', TEXT.connecting);
  const location_ = resp.headers.get('Location');
  if (location_) sessionUrl = new URL(location_, location.href).href;
  const servers = parseIceServers(resp.headers.get('Link'));
  if (servers.length) iceServers = servers;
  try {
    const sdp = await resp.text();
    if (gen !== generation) return;
    await conn.setRemoteDescription({ type: 'answer', sdp });
  } catch (err) {
    if (gen !== generation) return;
    log('answer refused:', err);
    fail('error', TEXT.failed);
    return;
  }
  log('answered; session', sessionUrl);
  watch(gen, conn);
}

// follow shows a connection's tracks and notices when it fails.
function follow(gen, conn, media) {
  conn.ontrack = (e) => {
    if (gen !== generation) return;
    log('track', e.track.kind);
    media.addTrack(e.track);
    e.track.addEventListener('ended', () => { if (e.track.kind === 'video') lost(gen, 'video track ended'); });
    if (video.srcObject !== media) video.srcObject = media;
    play();
  };
  let graceTimer = 0;
  conn.onconnectionstatechange = () => {
    log('connection', conn.connectionState);
    clearTimeout(graceTimer);
    switch (conn.connectionState) {
      case 'failed':
      case 'closed':
        lost(gen, conn.connectionState);
        break;
      case 'disconnected':
        graceTimer = setTimeout(() => { if (conn.connectionState === 'disconnected') lost(gen, 'disconnected'); }, DISCONNECT_GRACE_MS);
        break;
    }
  };
}

// post sends the offer once gathered; it resolves to the response, or to
// null when the attempt is over (failed, or replaced by a newer one).
async function post(gen, conn) {
  try {
    await conn.setLocalDescription(await conn.createOffer());
    await gathered(conn);
  } catch (err) {
    if (gen !== generation) return null;
    log('offer not created:', err);
    fail('error', TEXT.failed);
    return null;
  }
  if (gen !== generation) return null;
  let resp;
  try {
    resp = await fetch(whepUrl(), {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', ...authHeaders() },
      body: conn.localDescription.sdp,
    });
  } catch (err) {
    if (gen !== generation) return null;
    log('offer failed:', err);
    fail('error', TEXT.unreachable);
    return null;
  }
  if (gen !== generation) {
    if (resp.ok) deleteSession(new URL(resp.headers.get('Location') || '', location.href).href);
    return null;
  }
  return resp;
}

// refusal acts on a refused offer: wait, give up, or retry.
async function refusal(gen, resp) {
  const why = (await resp.text().catch(() => '')).trim();
  log('POST', resp.status, why);
  if (gen !== generation) return;
  switch (resp.status) {
    case 404: // nothing is published yet: wait, at an even pace
      teardown();
      // "The broadcast has stopped…" stays up until it starts again.
      setState('waiting', state === 'waiting' ? overlayText.textContent : TEXT.waiting);
      retry(WAITING_RETRY_MS);
      return;
    case 401:
    case 403: // another try would be refused the same way
      teardown();
      refused = true;
      setState('error', TEXT.auth);
      return;
    case 503: {
      // A server over its load limits says when to come back.
      const wait = Number(resp.headers.get('Retry-After')) || 0;
      if (wait <= 0) {
        fail('error', TEXT.full);
        return;
      }
      teardown();
      setState('error', `The server is full right now; trying again in ${wait} s…`);
      retry(wait * 1000);
      return;
    }
    default:
      fail('error', TEXT.failed);
  }
}

// watch checks the connection once a second: the first frame shows the
// video; no frame before CONNECT_TIMEOUT_MS, or no packet at all for
// STALL_MS (the presenter stopped but the room lives on), reconnects.
function watch(gen, conn) {
  const started = Date.now();
  let packets = -1;
  let lastMedia = Date.now();
  watchTimer = setInterval(async () => {
    if (gen !== generation) return;
    let frames = 0;
    let received = 0;
    try {
      const report = await conn.getStats();
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        received += s.packetsReceived || 0;
        if (s.kind === 'video') frames += s.framesDecoded || 0;
      });
    } catch {
      return;
    }
    if (gen !== generation) return;
    const now = Date.now();
    if (received !== packets) {
      packets = received;
      lastMedia = now;
    }
    if (state !== 'playing') {
      if (frames > 0 && video.videoWidth > 0) showPlaying(gen);
      else if (now - started > CONNECT_TIMEOUT_MS) lost(gen, 'no video after ' + CONNECT_TIMEOUT_MS + ' ms');
    } else if (now - lastMedia > STALL_MS) {
      lost(gen, 'no media for ' + STALL_MS + ' ms');
    }
  }, 1000);
}

function showPlaying(gen) {
  if (gen !== generation || state === 'playing' || !stream || video.srcObject !== stream || video.videoWidth === 0) return;
  backoff = MIN_BACKOFF_MS;
  setState('playing', '');
}

function play() {
  video.play().catch((err) => {
    // Unmuted autoplay refused (the user unmuted on an earlier connection
    // but the browser no longer allows it): play muted.
    log('play refused:', err);
    if (!video.muted) {
      video.muted = true;
      updateUnmute();
      video.play().catch(() => {});
    }
  });
}

// The first frame, and every new connection's first frame, ends "connecting".
for (const ev of ['playing', 'resize', 'loadeddata']) {
  video.addEventListener(ev, () => showPlaying(generation));
}
video.addEventListener('volumechange', updateUnmute);
video.addEventListener('dblclick', () => {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else document.documentElement.requestFullscreen?.().catch(() => {});
});
unmuteButton.addEventListener('click', () => {
  video.muted = false;
  video.play().catch(() => { video.muted = true; });
  updateUnmute();
});

// splitOutside splits s at sep, except inside <...> and "..." (with \ escapes).
function splitOutside(s, sep) {
  const out = [];
  let cur = '';
  let quoted = false;
  let angle = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted && c === '\\' && i + 1 < s.length) {
      cur += c + s[++i];
      continue;
    }
    if (!angle && c === '"') quoted = !quoted;
    else if (!quoted && c === '<') angle = true;
    else if (!quoted && c === '>') angle = false;
    if (c === sep && !quoted && !angle) {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

// parseIceServers reads RFC 9725 Link headers (fetch joins several with ", "):
// <turn:host:3478>; rel="ice-server"; username="u"; credential="c".
function parseIceServers(header) {
  if (!header) return [];
  const out = [];
  for (const link of splitOutside(header, ',')) {
    const m = /^\s*<([^>]*)>(.*)$/s.exec(link);
    if (!m) continue;
    const attrs = {};
    for (const part of splitOutside(m[2], ';')) {
      const kv = /^\s*([A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"]*))\s*$/s.exec(part);
      if (kv) attrs[kv[1].toLowerCase()] = kv[2] !== undefined ? kv[2].replace(/\\(.)/g, '$1') : kv[3];
    }
    if (attrs.rel !== 'ice-server') continue;
    const server = { urls: m[1] };
    if (attrs.username) server.username = attrs.username;
    if (attrs.credential) server.credential = attrs.credential;
    out.push(server);
  }
  return out;
}

// stop ends playback and the session (also what leaving the page does).
function stop() {
  clearTimeout(retryTimer);
  generation++;
  teardown();
  setState('ended', TEXT.ended);
}

addEventListener('pagehide', stop);
addEventListener('pageshow', (e) => { if (e.persisted) connect(); }); // back from the back-forward cache
addEventListener('online', () => { if (!refused && state !== 'playing' && state !== 'ended') connect(); });

// Automation contract (docs/web-client.md).
window.confabWatch = {
  get state() { return state; },
  get pc() { return pc; },
  get sessionUrl() { return sessionUrl; },
  get text() { return overlayText.textContent; },
  async framesDecoded() {
    if (!pc) return 0;
    let frames = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
    });
    return frames;
  },
  connect,
  stop,
  parseIceServers,
};

connect();
