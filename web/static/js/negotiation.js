// One RTCPeerConnection and its negotiation with the server (docs/protocol.md,
// docs/web-client.md "Negotiation"). No DOM: session.js drives it, and it is
// tested headless. The client is the polite peer: it applies its own offer
// locally only once the server accepted it, so a "glare" refusal leaves
// nothing to roll back (rolling back a first local offer leaves Chromium's
// ICE gathering stuck). Every step runs one at a time: a candidate must not
// overtake its offer, and our offer must not interleave with the server's.
import { SignalError } from './signaling.js';

// With tracks to receive, the server's offer comes first; publishing waits
// for it at most this long.
const SERVER_OFFER_WAIT_MS = 3000;

// Video is published with the room's codec (docs/protocol.md, room_codec):
// VP8 unless a member decodes only H.264. Audio is Opus.
export const VIDEO_CODECS = ['video/VP8', 'video/H264'];
const AUDIO = ['audio/opus'];

// videoCodecs are the room codecs this browser can both send and decode,
// as join announces them.
export function videoCodecs() {
  const has = (source, mime) => {
    const caps = source && source.getCapabilities && source.getCapabilities('video');
    return !!caps && caps.codecs.some((c) => c.mimeType.toLowerCase() === mime.toLowerCase());
  };
  return VIDEO_CODECS.filter((m) => has(globalThis.RTCRtpSender, m) && has(globalThis.RTCRtpReceiver, m));
}

// wanted picks, from a capability list, the codecs a transceiver may use:
// Opus for audio; for video the room's codec (H.264 in packetization mode
// 1, which the server forwards), or the first room codec the browser has.
function wanted(codecs, kind, videoCodec) {
  if (kind === 'audio') return codecs.filter((c) => AUDIO.includes(c.mimeType.toLowerCase()));
  const of = (mime) => codecs.filter((c) => c.mimeType.toLowerCase() === mime.toLowerCase()
    && (mime !== 'video/H264' || /packetization-mode=1/.test(c.sdpFmtpLine || '')));
  for (const mime of [videoCodec, ...VIDEO_CODECS]) {
    const found = mime ? of(mime) : [];
    if (found.length) return found;
  }
  return [];
}

// Sections are added in this order on every new connection.
const SOURCE_ORDER = { microphone: 0, camera: 1, screen: 2 };

// preferCodecs limits a transceiver to the codec it should send: Opus, or
// the room's video codec. Browsers without setCodecPreferences list VP8
// first, which the server picks in a VP8 room.
export function preferCodecs(transceiver, kind, videoCodec) {
  if (typeof transceiver.setCodecPreferences !== 'function') return;
  for (const source of [globalThis.RTCRtpReceiver, globalThis.RTCRtpSender]) {
    const caps = source && source.getCapabilities && source.getCapabilities(kind);
    if (!caps) continue;
    const codecs = wanted(caps.codecs, kind, videoCodec);
    if (!codecs.length) continue;
    try {
      transceiver.setCodecPreferences(codecs);
      return;
    } catch {
      // Some versions check against the other capability list: try it.
    }
  }
}

export class Negotiation {
  // sig is the joined Signaling; publications (track -> {source, encodings})
  // is what we send, shared with the session; expectOffer holds our own
  // offers until the server's offer is answered. Callbacks: onTrack(event,
  // trackId) for a received track, onState(connectionState), onAccepted()
  // after each answer to our offer.
  constructor({ sig, iceServers, publications, expectOffer, videoCodec, debug, onTrack, onState, onAccepted }) {
    this.sig = sig;
    this.videoCodec = videoCodec;
    this.publications = publications;
    this.debug = debug;
    this.onTrack = onTrack;
    this.onState = onState;
    this.onAccepted = onAccepted;
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
    this.senders = new Map(); // our track -> its RTCRtpSender
    this.mids = new Map();    // media section -> server track id
    this.pending = [];        // remote candidates held until the remote description is set
    this.chain = Promise.resolve();
    this.closed = false;
    this.awaitOffer = expectOffer;
    this.wire();
    if (expectOffer) {
      this.offerTimer = setTimeout(() => {
        if (!this.awaitOffer || this.closed) return;
        this.awaitOffer = false;
        this.serialize(() => this.offer(), 'own offer');
      }, SERVER_OFFER_WAIT_MS);
    }
  }

  wire() {
    const pc = this.pc;
    pc.onicecandidate = ({ candidate }) => {
      if (this.closed) return;
      if (this.debug) console.log('local candidate', candidate && candidate.candidate);
      if (candidate) this.sig.send({ type: 'candidate', candidate: candidate.toJSON() });
      else this.sig.send({ type: 'end_of_candidates' });
    };
    pc.onnegotiationneeded = () => this.serialize(() => this.offer(), 'own offer');
    pc.ontrack = (e) => {
      if (!this.closed) this.onTrack(e, this.mids.get(e.transceiver.mid) || e.track.id);
    };
    pc.onconnectionstatechange = () => {
      if (this.closed) return;
      if (this.debug) console.log('connection', pc.connectionState);
      this.onState(pc.connectionState);
    };
  }

  // serialize queues one step behind all earlier ones.
  serialize(step, what) {
    this.chain = this.chain.then(step).catch((e) => console.warn('handling', what, String(e)));
    return this.chain;
  }

  // handle takes the negotiation messages (offer, candidates) and says
  // whether it did; call it through serialize.
  async handle(m) {
    switch (m.type) {
      case 'offer':
        await this.answer(m);
        return true;
      case 'candidate':
        if (this.closed) return true;
        if (!this.pc.remoteDescription) this.pending.push(m.candidate);
        else await this.pc.addIceCandidate(m.candidate).catch((e) => console.warn('remote candidate', String(e)));
        return true;
      case 'end_of_candidates':
        return true;
      default:
        return false;
    }
  }

  // answer applies the server's offer; its mids map our receiving sections
  // to server track ids.
  async answer(m) {
    if (this.closed) return;
    const pc = this.pc;
    this.mids = new Map(Object.entries(m.mids || {}));
    await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
    await pc.setLocalDescription();
    this.sig.send({ type: 'answer', sdp: pc.localDescription.sdp });
    await this.flush();
    if (this.awaitOffer) {
      this.awaitOffer = false;
      this.serialize(() => this.offer(), 'own offer');
    }
  }

  // offer publishes our changes. If the server was offering at the same
  // time it answers "glare": we drop ours, take its offer (queued behind
  // this step), and offer again.
  async offer() {
    const pc = this.pc;
    if (this.closed || this.awaitOffer || pc.signalingState !== 'stable') return;
    // Who sends nothing has nothing to offer (the server's offers carry
    // what we receive), unless it must end sections it sent on.
    if (!this.senders.size && !this.retiring()) return;
    const local = await pc.createOffer();
    let answer;
    try {
      answer = await this.sig.request({ type: 'offer', sdp: local.sdp, tracks: this.described() });
    } catch (e) {
      if (e instanceof SignalError && e.code === 'glare') {
        this.serialize(() => this.offer(), 'own offer');
        return;
      }
      throw e;
    }
    if (this.closed || pc.signalingState !== 'stable') return;
    await pc.setLocalDescription(local);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    await this.flush();
    this.onAccepted();
  }

  // described lists the tracks an offer sends, with their sources.
  described() {
    const tracks = [];
    for (const t of this.pc.getTransceivers()) {
      const track = t.sender.track;
      if (!track || t.direction === 'inactive' || t.direction === 'recvonly') continue;
      const pub = this.publications.get(track);
      const source = pub ? pub.source : track.kind === 'audio' ? 'microphone' : 'camera';
      tracks.push({ id: track.id, source });
    }
    return tracks;
  }

  // retiring: a section we sent on has lost its track, and the server has
  // not been told yet.
  retiring() {
    return this.pc.getTransceivers().some((t) => !t.sender.track && (t.currentDirection === 'sendonly' || t.currentDirection === 'sendrecv'));
  }

  async flush() {
    const held = this.pending;
    this.pending = [];
    for (const c of held) await this.pc.addIceCandidate(c).catch((e) => console.warn('remote candidate', String(e)));
  }

  // addSender starts sending one published track on its own section.
  addSender(track, pub) {
    if (this.closed || this.senders.has(track)) return;
    const init = { direction: 'sendonly' };
    if (pub.encodings) init.sendEncodings = pub.encodings.map((e) => ({ ...e }));
    const t = this.pc.addTransceiver(track, init);
    preferCodecs(t, track.kind, this.videoCodec);
    this.senders.set(track, t.sender);
  }

  // setVideoCodec publishes video with another codec (the room's changed):
  // each video track moves to a new section, which the server takes for a
  // new track, as a codec cannot change under its subscribers.
  setVideoCodec(codec) {
    if (codec === this.videoCodec || this.closed) return;
    this.videoCodec = codec;
    for (const [track, pub] of this.publications) {
      if (track.kind !== 'video' || !this.senders.has(track)) continue;
      this.removeSender(track);
      this.addSender(track, pub);
    }
  }

  // setActiveLayers sends only the simulcast encodings the server names
  // (publish_layers): nobody needs the others now. A resumed encoding
  // starts with a keyframe.
  async setActiveLayers(trackId, rids) {
    for (const [track, sender] of this.senders) {
      if (track.id !== trackId) continue;
      const params = sender.getParameters();
      if (!params.encodings || params.encodings.length < 2) return;
      let changed = false;
      for (const e of params.encodings) {
        const on = rids.includes(e.rid);
        if (e.active !== on) {
          e.active = on;
          changed = true;
        }
      }
      if (changed) await sender.setParameters(params).catch((e) => console.warn('publish layers', String(e)));
    }
  }

  // removeSender stops sending a track; the next offer makes its section
  // inactive.
  removeSender(track) {
    const sender = this.senders.get(track);
    this.senders.delete(track);
    if (sender && !this.closed && this.pc.signalingState !== 'closed') this.pc.removeTrack(sender);
  }

  // publishAll adds every published track not sent yet.
  publishAll() {
    const order = (p) => SOURCE_ORDER[p[1].source] ?? 3;
    for (const [track, pub] of [...this.publications].sort((a, b) => order(a) - order(b))) this.addSender(track, pub);
  }

  close() {
    this.closed = true;
    clearTimeout(this.offerTimer);
    this.senders.clear();
    this.pending = [];
    this.pc.close();
  }
}
