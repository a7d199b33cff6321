// The meeting session without any DOM (docs/web-client.md): joins a room
// over the signaling WebSocket, keeps one negotiated RTCPeerConnection
// (negotiation.js), publishes the tracks it is given, keeps the room as the
// server describes it (members, tracks), and rejoins with a new connection
// after a drop, backing off from 1 s to 15 s. Pages learn what happens
// through events (on(name, fn)):
//   status {state, ...}  connected | reconnecting {why, at} | ended {bye} | failed {error}
//   welcome (welcome)    joined, before our tracks are added: adopt permissions here
//   joined (welcome)     joined and publishing
//   dropped ()           the session was forgotten (remote media is gone)
//   message (m, known)   a room event, after the model was updated; known is the
//                        member or track as it was known (participant_left,
//                        track_unpublished), or the updated track info
//   track ({info, track, stream})  remote media arrived
//   connection (state)   the RTCPeerConnection's connectionState
//   bye (m)              the server is closing this session
// "why" of a reconnect: lost, restarting, media_failed, unreachable.
import { Signaling, SignalError } from './signaling.js';
import { Negotiation, videoCodecs } from './negotiation.js';
import { AUTH_CODES } from './auth.js';

export const BACKOFF_MIN_MS = 1000;
export const BACKOFF_MAX_MS = 15000;

// Join refusals that another attempt cannot fix. "forbidden" on join: a
// moderator removed this identity from the room.
export const FINAL_CODES = ['room_full', 'invalid_room', 'unsupported_version', 'forbidden', ...AUTH_CODES];

// The server learns a published track only once its media arrives, so a
// mute for it may be refused as unknown at first: retried this often.
const MUTE_RETRY_MS = 500;
const MUTE_ATTEMPTS = 20;

// signalingURL is the WebSocket of a server's base URL (a redirect's).
export function signalingURL(base) {
  const u = new URL('ws', base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

export class Session {
  // url is the signaling WebSocket; room, name, token, lecture and role go
  // into every join (docs/protocol.md).
  constructor({ url, room, name = '', token = '', lecture = false, role = '', debug = false }) {
    this.url = url;
    this.room = room;
    this.name = name;
    this.token = token;
    this.lecture = lecture;
    this.role = role;
    this.debug = debug;
    this.me = '';
    this.sig = null;
    this.neg = null;
    this.joined = false;
    this.ended = false;                // left or removed: never reconnects
    this.bye = null;
    this.delay = BACKOFF_MIN_MS;       // the next reconnect's wait
    this.timer = null;                 // the pending reconnect
    this.members = new Map();          // participant id -> {id, name, role}
    this.tracks = new Map();           // server track id -> info (+ subscribed once received)
    this.publications = new Map();     // our MediaStreamTrack -> {source, encodings, muted}
    this.videoCodecs = videoCodecs();  // what this browser sends and decodes, told in join
    this.videoCodec = '';              // the room's, from welcome and room_codec
    this.handlers = new Map();
  }

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
    return this;
  }

  emit(event, ...args) {
    for (const fn of this.handlers.get(event) || []) {
      try {
        fn(...args);
      } catch (e) {
        console.warn('session', event, e);
      }
    }
  }

  get pc() {
    return this.neg ? this.neg.pc : null;
  }

  // mids maps received media sections to server track ids.
  get mids() {
    return this.neg ? this.neg.mids : new Map();
  }

  // connect joins (again) and resolves with the welcome; a refusal rejects
  // with the server's SignalError. A busy node of a cluster may hand the
  // join to another (redirect): followed once, and that node is where
  // later rejoins go.
  async connect(redirected = false) {
    const sig = new Signaling(this.url);
    this.sig = sig;
    this.bye = null;
    sig.onmessage = (m) => this.received(sig, m);
    sig.onclose = (e, byUs) => this.signalClosed(sig, e, byUs);
    let welcome;
    try {
      await sig.open();
      welcome = await sig.request(this.joinMessage());
    } catch (e) {
      sig.close();
      if (this.sig === sig) this.sig = null;
      if (e instanceof SignalError && e.code === 'redirect' && e.url && !redirected) {
        this.url = signalingURL(e.url);
        return this.connect(true);
      }
      throw e;
    }
    this.adopt(sig, welcome);
    this.emit('welcome', welcome);
    this.neg.publishAll();
    this.joined = true;
    this.emit('status', { state: 'connected' });
    this.emit('joined', welcome);
    return welcome;
  }

  joinMessage() {
    const join = { type: 'join', room: this.room, name: this.name, version: 1, videoCodecs: this.videoCodecs };
    if (this.token) join.token = this.token;
    if (this.lecture) join.lecture = true;
    if (this.role) join.role = this.role;
    return join;
  }

  // adopt takes the welcome's view of the room and opens the connection.
  adopt(sig, welcome) {
    this.me = welcome.participant.id;
    // An invitation may carry the name, which the server then uses.
    if (welcome.participant.name) this.name = welcome.participant.name;
    this.members.clear();
    for (const p of welcome.members || []) this.members.set(p.id, p);
    this.tracks.clear();
    for (const t of welcome.tracks || []) this.tracks.set(t.id, { ...t, muted: !!t.muted });
    this.videoCodec = welcome.videoCodec || 'video/VP8';
    this.neg = new Negotiation({
      videoCodec: this.videoCodec,
      sig,
      iceServers: welcome.iceServers || [],
      publications: this.publications,
      expectOffer: this.tracks.size > 0,
      debug: this.debug,
      onTrack: (e, id) => this.trackArrived(e, id),
      onState: (state) => this.connectionChanged(state),
      onAccepted: () => this.announceMuted(),
    });
  }

  received(sig, m) {
    if (sig !== this.sig) return;
    // A bye is acted on at once: the socket closes right after it, maybe
    // before queued negotiation steps have run.
    if (m.type === 'bye') {
      this.bye = m;
      this.emit('bye', m);
      return;
    }
    const neg = this.neg;
    if (neg) neg.serialize(() => this.handle(neg, m), m.type);
  }

  async handle(neg, m) {
    if (neg !== this.neg || (await neg.handle(m))) return;
    this.emit('message', m, this.update(m));
  }

  // update applies a room event to the model and returns what it concerns.
  update(m) {
    switch (m.type) {
      case 'participant_joined':
        this.members.set(m.participant.id, m.participant);
        return m.participant;
      case 'participant_left': {
        const p = this.members.get(m.participant.id) || m.participant;
        this.members.delete(p.id);
        for (const [id, t] of this.tracks) if (t.participant === p.id) this.tracks.delete(id);
        return p;
      }
      case 'track_published':
      case 'track_updated': {
        if (m.track.participant === this.me) return m.track;
        const info = { ...(this.tracks.get(m.track.id) || {}), ...m.track, muted: !!m.track.muted };
        this.tracks.set(info.id, info);
        return info;
      }
      case 'track_unpublished': {
        const info = this.tracks.get(m.track.id) || m.track;
        this.tracks.delete(m.track.id);
        return info;
      }
      case 'publish_layers':
        // Dynacast: nobody needs the other encodings of this track now.
        if (this.neg && m.track) this.neg.setActiveLayers(m.track.id, m.track.rids || []);
        return undefined;
      case 'room_codec':
        // Publishers send what every member decodes: our video moves.
        this.videoCodec = m.videoCodec;
        if (this.neg) this.neg.setVideoCodec(m.videoCodec);
        return undefined;
      default:
        return undefined;
    }
  }

  // trackArrived maps received media to the track the server announced.
  trackArrived(e, id) {
    let info = this.tracks.get(id);
    if (!info) {
      // Not announced (yet): the stream id is the publisher's id.
      const participant = (e.streams[0] && e.streams[0].id) || 'unknown';
      info = { id, participant, kind: e.track.kind, source: e.track.kind === 'audio' ? 'microphone' : 'camera' };
    }
    info.subscribed = true;
    this.tracks.set(id, info);
    this.emit('track', { info, track: e.track, stream: e.streams[0] || null });
  }

  connectionChanged(state) {
    this.emit('connection', state);
    if (state === 'connected') this.delay = BACKOFF_MIN_MS;
    if (state === 'failed') {
      console.warn('media connection failed');
      this.scheduleReconnect('media_failed');
    }
  }

  signalClosed(sig, e, byUs) {
    if (byUs || this.ended || sig !== this.sig || !this.joined) return;
    console.warn('signaling closed', e.code, e.reason);
    const bye = this.bye;
    if (bye && bye.code && bye.code !== 'shutting_down') {
      // Sent away on purpose: coming back would be wrong.
      this.drop();
      this.emit('status', { state: 'ended', bye });
      return;
    }
    const restarting = e.code === 1001 || (bye && bye.code === 'shutting_down');
    this.scheduleReconnect(restarting ? 'restarting' : 'lost');
  }

  // scheduleReconnect forgets the session and joins again after the
  // backoff delay, with a new connection.
  scheduleReconnect(why) {
    if (this.ended || this.timer) return;
    this.drop();
    const delay = this.delay;
    this.delay = Math.min(delay * 2, BACKOFF_MAX_MS);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.attempt(why);
    }, delay);
    this.emit('status', { state: 'reconnecting', why, at: Date.now() + delay });
  }

  async attempt(why) {
    if (this.ended) return;
    this.emit('status', { state: 'reconnecting', why, at: 0 });
    try {
      await this.connect();
    } catch (e) {
      if (e instanceof SignalError && FINAL_CODES.includes(e.code)) {
        this.emit('status', { state: 'failed', error: e });
        return;
      }
      console.warn('reconnect', String(e));
      this.scheduleReconnect(e.code === 'unreachable' ? 'unreachable' : why);
    }
  }

  // reconnectNow skips the rest of a pending backoff (the browser is back
  // online).
  reconnectNow() {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt('lost');
  }

  // drop forgets the server session, keeping what we publish.
  drop() {
    this.joined = false;
    if (this.sig) this.sig.close();
    this.sig = null;
    if (this.neg) this.neg.close();
    this.neg = null;
    this.tracks.clear();
    this.members.clear();
    this.emit('dropped');
  }

  // close ends the session for good; leave tells the server we go.
  close({ leave = true } = {}) {
    this.ended = true;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.sig && leave) this.sig.send({ type: 'leave' });
    this.drop();
  }

  // decodable says whether this browser can show a track (its codec).
  decodable(info) {
    return !info || info.kind !== 'video' || !info.codec || this.videoCodecs.length === 0
      || this.videoCodecs.some((c) => c.toLowerCase() === info.codec.toLowerCase());
  }

  // request sends a request of the joined session.
  request(m) {
    if (!this.sig || !this.joined) return Promise.reject(new SignalError('closed', 'Not connected.'));
    return this.sig.request(m);
  }

  // publish sends a track now (when joined) and after every rejoin;
  // encodings are its simulcast layers.
  publish(track, { source, encodings = null, muted = false }) {
    const pub = { source, encodings, muted };
    this.publications.set(track, pub);
    if (this.neg) this.neg.addSender(track, pub);
  }

  unpublish(track) {
    this.publications.delete(track);
    if (this.neg) this.neg.removeSender(track);
  }

  // setMuted records that a published track is muted or not, and tells
  // the server unless told not to (it already knows).
  setMuted(track, muted, announce = true) {
    const pub = this.publications.get(track);
    if (!pub) return;
    pub.muted = muted;
    if (announce) this.announce(track, muted);
  }

  // announceMuted repeats our muted tracks after every accepted offer: a
  // rejoin publishes new tracks unmuted.
  announceMuted() {
    for (const [track, pub] of this.publications) if (pub.muted) this.announce(track, true);
  }

  announce(track, muted, attempt = 0) {
    const sig = this.sig;
    if (!sig || !this.joined) return;
    sig.request({ type: 'mute', trackId: track.id, muted }).catch((e) => {
      const pub = this.publications.get(track);
      const current = sig === this.sig && !!pub && pub.muted === muted;
      if (e.code === 'unknown_track' && current && attempt < MUTE_ATTEMPTS) {
        setTimeout(() => this.announce(track, muted, attempt + 1), MUTE_RETRY_MS);
        return;
      }
      if (current) console.warn('mute', String(e));
    });
  }
}
