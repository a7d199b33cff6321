// The meeting page: wires the modules together (docs/web-client.md).
// session.js joins the room named in the URL and keeps the connection
// alive; controls.js captures and publishes our camera and microphone;
// subscriptions.js asks for what each tile shows; people.js lists people,
// chat and the moderators' actions; permissions.js follows our role;
// lecture.js the lecture's own controls (docs/lecture-client.md). This
// file routes the session's events to them and keeps the page's own
// controls: join, leave, statistics, the automation contract.
// Automation contract (docs/web-client.md): ?name=N&autojoin=1 joins at once.
import { Session } from './session.js';
import { collect } from './stats.js';
import { Tiles, tileKey, hasTile } from './tiles.js';
import { AUTH_CODES, AUTH_MESSAGES, OPEN_PERMISSIONS, tokenClaims } from './auth.js';
import { Lecture } from './lecture.js';
import { Recording } from './recording.js';
import { Subscriptions } from './subscriptions.js';
import { People } from './people.js';
import { Controls } from './controls.js';
import { Permissions } from './permissions.js';
import { explain, explainJoin, setStatus, showMessage, showReconnecting, status } from './notices.js';
import * as checks from './checks.js';

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

const session = new Session({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
  room: roomName, token, lecture: wantLecture, role: wantRole, debug,
});
const lecture = new Lecture({
  request: (m) => session.request(m),
  onError: (what, err) => showMessage('meeting-message', `${what}: ${explain(err)}`),
});
const recording = new Recording({
  request: (m) => session.request(m),
  showMessage: (text) => showMessage('meeting-message', text),
  system: (text) => people.system(text),
});
const permissions = new Permissions({ claims, wantRole, lecture });
lecture.onChatPolicy = () => permissions.render();
const tiles = new Tiles({
  grid: $('grid'),
  stage: $('stage'),
  template: $('tile-template'),
  onChange: () => subscriptions.schedule(),
  onSoundBlocked: () => { $('sound-banner').hidden = false; },
});
const subscriptions = new Subscriptions({
  tracks: () => session.tracks,
  tile: (key) => tiles.get(key),
  thumbnails: () => $('meeting').querySelector('.media-area').classList.contains('has-stage'),
  request: (m) => session.request(m),
  joined: () => session.joined,
  debug,
});
const controls = new Controls({
  session, tiles, showMessage,
  mayPublish: () => permissions.perms.publish,
  onChange: () => people.render(),
});
const people = new People({ session, tiles, permissions, isLecture: () => lecture.active, showMessage, explain });

// --- the session's events ---------------------------------------------------

// A (re)join, before our tracks are added: adopt what the server grants.
session.on('welcome', (welcome) => {
  tiles.setLecture(!!welcome.lecture);
  lecture.start(welcome);
  recording.start(welcome);
  permissions.adopt(welcome.permissions || OPEN_PERMISSIONS, welcome.participant.role);
  recording.setModerator(permissions.perms.moderate);
  if (permissions.perms.publish) {
    controls.showSelf();
  } else {
    controls.dropLocal();
    tiles.remove('self');
  }
  for (const p of session.members.values()) if (hasTile(p)) tiles.ensure(p.id, { participant: p.id, name: p.name });
  for (const t of session.tracks.values()) showMuted(t);
});

session.on('joined', () => {
  showMessage('meeting-message', '');
  people.render();
  controls.updateButtons();
  subscriptions.schedule();
  if (permissions.perms.publish && !controls.captured) controls.captureLate().catch((e) => console.warn('capture', String(e)));
});

session.on('status', (s) => {
  if (s.state === 'connected') {
    setStatus('Connected');
  } else if (s.state === 'reconnecting') {
    showReconnecting(s.why, s.at);
  } else if (s.state === 'ended') {
    setStatus('Disconnected', 'error');
    showMessage('meeting-message', AUTH_MESSAGES[s.bye.code] || s.bye.message || explain(s.bye));
  } else if (s.state === 'failed') {
    setStatus('Not connected', 'error');
    showMessage('meeting-message', explainJoin(s.error));
  }
});

// The session was forgotten: our own tiles, local media and chat stay.
session.on('dropped', () => {
  subscriptions.reset();
  tiles.removeRemote();
  people.setSpeaker('');
  lecture.stop();
});

// Removal by a moderator ends the meeting at once, with no reconnect.
session.on('bye', (m) => {
  if (m.code === 'removed') endMeeting('removed', AUTH_MESSAGES.removed);
});

session.on('track', showTrack);
session.on('message', (m, known) => {
  if (!roomChanged(m, known)) otherEvent(m);
});

// showTrack puts received media on its participant's tile.
function showTrack({ info, track, stream }) {
  const member = session.members.get(info.participant);
  const label = member ? member.name : 'Guest';
  const key = tileKey(info);
  const screen = key.endsWith('/screen');
  const tile = tiles.ensure(key, { participant: info.participant, name: screen ? `${label} (screen)` : label, screen });
  tiles.addTrack(tile, track);
  tile.dataset[track.kind === 'audio' ? 'trackAudio' : 'trackVideo'] = info.id;
  showMuted(info);
  people.render();
  const detach = () => tiles.removeTrack(tile, track);
  track.addEventListener('ended', detach);
  if (stream) {
    stream.addEventListener('removetrack', (ev) => {
      if (ev.track === track) detach();
    });
  }
  subscriptions.schedule();
}

function showMuted(info) {
  if (info.participant === session.me) return;
  tiles.showMuted(info);
  tiles.showUndecodable(info, !session.decodable(info));
}

// roomChanged follows members and tracks coming and going; known is the
// member or track as the session knew it. Returns whether m was one.
function roomChanged(m, known) {
  switch (m.type) {
    case 'participant_joined':
      if (hasTile(known)) tiles.ensure(known.id, { participant: known.id, name: known.name });
      // In a lecture only the stage is announced.
      people.system(lecture.active ? `${known.name} is on stage` : `${known.name} joined`);
      break;
    case 'participant_left':
      tiles.remove(known.id);
      tiles.remove(`${known.id}/screen`);
      if (people.speaker === known.id) people.setSpeaker('');
      people.system(lecture.active ? `${known.name} left the stage` : `${known.name} left`);
      break;
    case 'track_published':
    case 'track_updated':
      if (session.me && m.track.participant === session.me) {
        controls.mutedByModerator(m.track, session.members.get(m.track.mutedBy));
        return true;
      }
      showMuted(known);
      subscriptions.schedule();
      break; // the people list shows it, and a moderator's Mute button follows it
    case 'track_unpublished':
      subscriptions.forget(known.id);
      if (known.source === 'screen') tiles.remove(`${known.participant}/screen`);
      else if (known.kind === 'audio' && tiles.get(known.participant)) tiles.get(known.participant).dataset.mutedAudio = 'false';
      break;
    default:
      return false;
  }
  people.render();
  return true;
}

function otherEvent(m) {
  switch (m.type) {
    case 'active_speaker':
      people.setSpeaker(m.speaker || '');
      break;
    case 'layers':
      subscriptions.setLayers(m.decisions);
      break;
    case 'chat':
      people.addChat(m.from, m.name, m.text);
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
    case 'recording':
      recording.event(m);
      break;
    case 'lecture_settings':
      lecture.chatPolicy(m.audienceChat);
      people.system(m.audienceChat ? 'The audience may write in the chat again' : 'The moderators turned the audience\'s chat off');
      break;
    case 'error':
      console.warn('server error', m.code, m.message);
      break;
    default:
      if (debug) console.log('ignored message', m.type);
  }
}

// permissionsChanged: a moderator gave us another role. Coming on stage
// turns the camera and microphone on and publishes them; going back to the
// audience stops them (the server has already ended our tracks) and
// renegotiates without them.
function permissionsChanged(perms, role) {
  const could = permissions.perms.publish;
  if (could && !perms.publish) controls.retire();
  permissions.adopt(perms, role);
  recording.setModerator(permissions.perms.moderate);
  const can = permissions.perms.publish;
  if (!can) controls.dropLocal();
  controls.updateButtons();
  people.render();
  if (!could && can) {
    showMessage('meeting-message', 'You are on stage: your camera and microphone are on.');
    controls.captureLate().catch((e) => console.warn('capture', String(e)));
  } else if (could && !can) {
    showMessage('meeting-message', 'You are back in the audience.');
  }
}

// --- joining and leaving --------------------------------------------------

async function join() {
  const name = $('display-name').value.trim();
  if (!name) {
    showMessage('prejoin-message', 'Please enter your name.');
    $('display-name').focus();
    return;
  }
  session.name = name;
  try {
    localStorage.setItem('confab.name', name);
  } catch {
    // Storage may be disabled; the name is only a convenience.
  }
  $('join').disabled = true;
  showMessage('prejoin-message', '');
  setStatus('Connecting…', 'idle');
  try {
    await controls.prepare();
    await session.connect();
    $('prejoin').hidden = true;
    $('meeting').hidden = false;
    $('preview').srcObject = null;
    showMessage('prejoin-message', '');
    showMessage('meeting-message', controls.notice);
    tiles.layout();
    subscriptions.schedule();
  } catch (e) {
    session.drop();
    setStatus(e.code === 'room_full' ? 'Room is full' : 'Not connected', 'error');
    showMessage('prejoin-message', explainJoin(e));
    // Without a valid invitation, trying again cannot help, and the camera
    // has no reason to stay on.
    const refused = AUTH_CODES.includes(e.code) || e.code === 'forbidden';
    if (refused) controls.releaseDevices();
    $('join').disabled = refused;
    if (e.code === 'unreachable') showCheck('The server cannot be reached from here.');
  }
}

// endMeeting closes the session for good and shows the end card: we left
// ("left", with a way back) or a moderator removed us ("removed").
function endMeeting(reason, title) {
  session.close({ leave: reason === 'left' });
  controls.end();
  $('prejoin').hidden = true;
  $('meeting').hidden = true;
  $('left').hidden = false;
  $('left').dataset.reason = reason;
  $('left-title').textContent = title;
  // The invitation comes along: it is what lets us in again.
  const again = new URLSearchParams();
  if (token) again.set('token', token);
  if (wantLecture) again.set('lecture', '1');
  const query = again.toString();
  $('rejoin').href = `/r/${encodeURIComponent(roomName)}${query ? `?${query}` : ''}`;
  $('rejoin').hidden = reason === 'removed';
  setStatus('');
}

function leave() {
  endMeeting('left', 'You left the meeting');
}

// --- statistics -------------------------------------------------------------

async function refreshStats() {
  const pc = session.pc;
  if (!pc || !document.body.classList.contains('show-stats')) return;
  const panels = await collect(pc, {
    inbound: (mid) => {
      const id = session.mids.get(mid);
      const info = id && session.tracks.get(id);
      return info ? { id, key: tileKey(info) } : null;
    },
    outbound: (mid) => {
      const t = pc.getTransceivers().find((x) => x.mid === mid);
      if (!t || !t.sender.track) return null;
      return t.sender.track === controls.screenTrack ? 'self/screen' : 'self';
    },
    layer: (id) => subscriptions.layers.get(id),
  });
  for (const tile of tiles.all()) tile.querySelector('.stats').textContent = panels.get(tile.dataset.key) || '';
}

// --- the page's own controls ------------------------------------------------

function wireControls() {
  $('prejoin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    join();
  });
  $('leave').addEventListener('click', leave);
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
  $('copy-link').addEventListener('click', async () => {
    const link = `${location.origin}/r/${encodeURIComponent(roomName)}`;
    try {
      await navigator.clipboard.writeText(link);
      $('copy-link').textContent = 'Link copied';
    } catch {
      window.prompt('Copy this link and send it to the people you invite:', link);
    }
    setTimeout(() => { $('copy-link').textContent = 'Copy link'; }, 2000);
  });
  // Back online: try at once instead of waiting out the backoff.
  window.addEventListener('online', () => session.reconnectNow());
  setInterval(() => refreshStats().catch((e) => console.warn('stats', String(e))), 1000);
}

// showCheck puts a line under the pre-join form, with a link to /check.
function showCheck(text) {
  $('prejoin-check').querySelector('span').textContent = text;
  $('prejoin-check').hidden = false;
}

// precheck tests media over UDP while the pre-join screen waits for the
// user (not with autojoin): a network that blocks it is the usual reason
// for "I can't see the others", and the check page says what to do.
async function precheck() {
  const udp = await checks.udp();
  if (udp.state === 'ok' || !$('meeting').hidden) return;
  const tcp = await checks.tcp(await checks.config().catch(() => ({ tcp: false })));
  showCheck(tcp.state === 'ok'
    ? 'This network blocks UDP to the server: the meeting will use TCP, with more delay.'
    : 'This network blocks media to the server: you may neither see nor hear the others.');
}

// fillName: a name in the invitation is the one the server uses; else the
// URL's, else the one remembered.
function fillName() {
  let remembered = '';
  try {
    remembered = localStorage.getItem('confab.name') || '';
  } catch {
    // Storage may be disabled.
  }
  if (claims && typeof claims.name === 'string' && claims.name.trim()) {
    $('display-name').value = claims.name.trim();
    $('display-name').readOnly = true;
  } else {
    $('display-name').value = params.get('name') || remembered;
  }
}

// Exposed for tests and debugging; see docs/web-client.md.
window.confab = {
  // A read-only view of the modules' state.
  state: {
    get sig() { return session.sig; },
    get pc() { return session.pc; },
    get members() { return session.members; },
    get tracks() { return session.tracks; },
    get mids() { return session.mids; },
    get layers() { return subscriptions.layers; },
    get local() { return controls.local; },
    get muted() { return { ...controls.muted }; },
    get chat() { return people.chat; },
    get videoCodec() { return session.videoCodec; },
    get videoCodecs() { return session.videoCodecs; },
  },
  get pc() { return session.pc; },
  get participantId() { return session.me; },
  status,
  tiles: () => tiles.all().map((t) => ({
    key: t.dataset.key,
    participant: t.dataset.participant,
    source: t.dataset.source,
    name: t.querySelector('.name').textContent,
    hasVideo: t.dataset.hasVideo === 'true',
    mutedVideo: t.dataset.mutedVideo === 'true',
    mutedAudio: t.dataset.mutedAudio === 'true',
    speaking: t.dataset.speaking === 'true',
    undecodable: t.dataset.undecodable === 'true',
    width: t.clientWidth,
    height: t.clientHeight,
  })),
  chat: () => people.chat.map(({ from, name, text }) => ({ from, name, text })),
  get permissions() { return { ...permissions.perms }; },
  get role() { return permissions.role; },
  join,
  leave,
  setMuted: (kind, muted) => controls.setMuted(kind, muted),
  muteParticipant: (id) => people.moderate('mute', id),
  removeParticipant: (id) => people.moderate('remove', id),
  get lecture() {
    return { active: lecture.active, audience: lecture.audience, raised: lecture.raised, hands: [...lecture.hands.values()] };
  },
  raiseHand: (raised) => lecture.raiseHand(raised),
  promote: (id, role) => lecture.promote(id, role),
  get recording() { return { on: recording.on, badge: !$('recording-badge').hidden, button: !$('record').hidden }; },
  record: (on) => recording.set(on),
};

$('room-title').textContent = roomName;
document.title = `${roomName} · Confab`;
fillName();
if (token) $('copy-link').title = 'Copy the meeting link (everyone needs their own invitation to join)';
permissions.render();
wireControls();
if (params.get('autojoin') === '1' && $('display-name').value.trim()) {
  join();
} else {
  if (permissions.perms.publish) controls.startPreview().catch((e) => showMessage('prejoin-message', explain(e)));
  precheck().catch((e) => console.warn('connection check', String(e)));
}
