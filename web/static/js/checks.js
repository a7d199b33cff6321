// Connection checks against this server (docs/operations.md,
// "Troubleshooting"): each resolves to {state, text}, state one of ok,
// fail, skip, with text in plain words saying what it means and what to
// do. No page elements: the check page (check.js) and the meeting's
// pre-join screen use them.
// The server's side is /check/config and /check/ice (room/check.go): a
// data-channel-only PeerConnection that answers with one transport's
// candidates and echoes what it receives. No room is joined.

const ICE_WAIT_MS = 10000;
const GATHER_WAIT_MS = 5000;

// config fetches what a participant would get: ICE servers (with TURN
// credentials) and whether ICE over TCP is offered.
export async function config() {
  const res = await fetch('/check/config', { cache: 'no-store' });
  if (!res.ok) throw new Error(`the server answered ${res.status}`);
  return res.json();
}

// websocket checks that the signaling WebSocket opens (then closes it:
// nothing is joined).
export function websocket(url, timeoutMs = 8000) {
  return new Promise((resolve) => {
    let ws;
    const done = (r) => {
      clearTimeout(timer);
      if (ws) ws.close();
      resolve(r);
    };
    const fail = () => done({ state: 'fail', text: 'The meeting connection (a WebSocket) could not be opened. A proxy or firewall may block WebSockets: try another network, or ask its administrator to allow secure WebSockets (wss://) to this server.' });
    const timer = setTimeout(fail, timeoutMs);
    try {
      ws = new WebSocket(url);
    } catch {
      fail();
      return;
    }
    ws.onopen = () => done({ state: 'ok', text: 'The meeting connection (WebSocket) works.' });
    ws.onerror = fail;
  });
}

function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_WAIT_MS);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

// echoed waits for the data channel to open and one message to come back;
// it resolves with the round trip in ms, or null.
function echoed(dc) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ICE_WAIT_MS);
    let sent = 0;
    dc.onopen = () => {
      sent = performance.now();
      dc.send('confab check');
    };
    dc.onmessage = () => {
      clearTimeout(timer);
      resolve(Math.round(performance.now() - sent));
    };
  });
}

// connect runs one check connection: transport is udp, tcp or relay (the
// browser then uses only the TURN servers given). It resolves to
// {status, rtt, relayed, errors}: status is the check endpoint's HTTP
// status (0 when it was not reached), rtt the echo's round trip or null.
export async function connect(transport, iceServers = []) {
  const relay = transport === 'relay';
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relay ? 'relay' : 'all' });
  const errors = [];
  let relayed = false;
  pc.addEventListener('icecandidateerror', (e) => errors.push(e.errorCode));
  pc.addEventListener('icecandidate', (e) => {
    if (e.candidate && / typ relay /.test(e.candidate.candidate)) relayed = true;
  });
  const dc = pc.createDataChannel('check');
  try {
    await pc.setLocalDescription();
    await gathered(pc);
    if (relay && !relayed) return { status: 0, rtt: null, relayed, errors };
    const res = await fetch(`/check/ice?transport=${transport}`, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp,
    });
    if (!res.ok) return { status: res.status, rtt: null, relayed, errors };
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    return { status: res.status, rtt: await echoed(dc), relayed, errors };
  } catch (e) {
    errors.push(String(e));
    return { status: 0, rtt: null, relayed, errors };
  } finally {
    pc.close();
  }
}

// udp: media straight over UDP, the best path.
export async function udp() {
  const r = await connect('udp');
  if (r.rtt !== null) return { state: 'ok', text: `Media over UDP works (${r.rtt} ms round trip): the best path for calls.` };
  if (r.status === 429) return limited();
  return { state: 'fail', text: 'Media over UDP does not get through: this network (or a firewall) blocks UDP to the server. Meetings fall back to TCP or TURN if they work below, with more delay; to fix it, ask the network\'s administrator to allow UDP to this server.' };
}

// tcp: ICE over TCP, for networks that block UDP.
export async function tcp(cfg) {
  if (!cfg.tcp) return { state: 'skip', text: 'This server does not offer media over TCP (its operator can turn it on with -ice-tcp-port).' };
  const r = await connect('tcp');
  if (r.rtt !== null) return { state: 'ok', text: `Media over TCP works (${r.rtt} ms round trip): meetings work even where UDP is blocked.` };
  if (r.status === 429) return limited();
  return { state: 'fail', text: 'Media over TCP does not get through: a firewall blocks the server\'s TCP media port. Ask the network\'s administrator to allow it, or use another network.' };
}

// turnGroups splits the TURN URLs of the ICE servers into those reached
// over UDP and those over TCP or TLS, each with its credentials.
export function turnGroups(iceServers) {
  const groups = { udp: [], tcp: [] };
  for (const s of iceServers || []) {
    for (const url of [].concat(s.urls || [])) {
      if (!/^turns?:/i.test(url)) continue;
      const viaTCP = /^turns:/i.test(url) || /transport=tcp/i.test(url);
      groups[viaTCP ? 'tcp' : 'udp'].push({ urls: [url], username: s.username, credential: s.credential });
    }
  }
  return groups;
}

// turn checks a relay through the TURN servers of one group.
export async function turn(servers, label) {
  if (!servers.length) return { state: 'skip', text: `This server has no TURN over ${label} configured.` };
  const r = await connect('relay', servers);
  if (r.rtt !== null) return { state: 'ok', text: `TURN over ${label} works (${r.rtt} ms round trip): a relay is there if direct paths are blocked.` };
  if (r.status === 429) return limited();
  if (r.errors.includes(401)) return { state: 'fail', text: `TURN over ${label} refused the credentials this server handed out: the TURN server's secret does not match Confab's (-turn-secret). Tell the server's operator.` };
  if (!r.relayed) return { state: 'fail', text: `TURN over ${label} could not be reached, or gave no relay: a firewall may block it (${servers.map((s) => s.urls[0]).join(', ')}). Tell the server's operator if other networks fail too.` };
  return { state: 'fail', text: `TURN over ${label} gave a relay, but media did not get through it to the server: the TURN server may not be allowed to reach Confab. Tell the server's operator.` };
}

function limited() {
  return { state: 'fail', text: 'Too many checks from this address just now: wait a minute and check again.' };
}

// device checks that the camera or the microphone can be opened.
export async function device(kind) {
  const what = kind === 'video' ? 'Camera' : 'Microphone';
  if (!globalThis.navigator || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { state: 'fail', text: `${what}: this page cannot use it here (it needs https).` };
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: true });
    const label = stream.getTracks()[0] ? stream.getTracks()[0].label : '';
    for (const t of stream.getTracks()) t.stop();
    return { state: 'ok', text: `${what} works${label ? ` (${label})` : ''}.` };
  } catch (e) {
    const why = {
      NotAllowedError: 'permission was refused: allow it in the browser\'s site settings (the icon left of the address) and check again.',
      NotFoundError: 'none was found: plug one in, or check that the system lets the browser use it.',
      NotReadableError: 'it is in use by another application, or the system blocks it: close the other application and check again.',
    }[e.name] || `it could not be opened (${e.name}).`;
    return { state: 'fail', text: `${what}: ${why}` };
  }
}
