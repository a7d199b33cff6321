// Our own media and its controls: the pre-join preview and device pickers,
// the microphone and camera toggles (before and during the meeting), the
// screen share, and the self tiles. Owns the local stream, the mute state
// and the share; hands tracks to the session to publish.
import { CAMERA_ENCODINGS, SCREEN_ENCODINGS, listDevices, capture } from './media.js';

const $ = (id) => document.getElementById(id);

export class Controls {
  // session publishes; tiles shows the self tiles; mayPublish() says
  // whether we may publish now; showMessage(where, text) tells the user;
  // onChange() runs when our mute state changed (the people list shows it).
  constructor({ session, tiles, mayPublish, showMessage, onChange }) {
    this.session = session;
    this.tiles = tiles;
    this.mayPublish = mayPublish;
    this.showMessage = showMessage;
    this.onChange = onChange;
    this.local = null;         // MediaStream of camera and microphone (may have no tracks)
    this.notice = '';          // why some media is missing, for the user
    this.muted = { audio: false, video: false };
    this.screen = null;        // MediaStream from getDisplayMedia
    this.screenTrack = null;
    this.captured = false;     // camera and microphone were asked for
    this.captureGen = 0;       // bumped to discard a capture still in flight
    this.ended = false;        // the meeting is over
    $('toggle-mic').addEventListener('click', () => this.setMuted('audio', !this.muted.audio));
    $('toggle-cam').addEventListener('click', () => this.setMuted('video', !this.muted.video));
    $('pre-mic').addEventListener('click', () => this.setMuted('audio', !this.muted.audio));
    $('pre-cam').addEventListener('click', () => this.setMuted('video', !this.muted.video));
    $('toggle-screen').addEventListener('click', () => (this.screenTrack ? this.stopScreen() : this.startScreen()));
    $('camera-select').addEventListener('change', () => this.startPreview());
    $('mic-select').addEventListener('change', () => this.startPreview());
  }

  tracksOf(kind) {
    if (!this.local) return [];
    return kind === 'audio' ? this.local.getAudioTracks() : this.local.getVideoTracks();
  }

  // use makes a captured stream ours: its tracks are published (at once
  // when joined, else at the next join) with the mute state of the buttons.
  use(stream, notice) {
    this.release();
    this.local = stream;
    this.notice = notice;
    for (const t of stream.getAudioTracks()) this.session.publish(t, { source: 'microphone', muted: this.muted.audio });
    for (const t of stream.getVideoTracks()) {
      this.session.publish(t, { source: 'camera', encodings: CAMERA_ENCODINGS, muted: this.muted.video });
    }
    this.applyMute();
  }

  // release stops the camera and microphone and stops publishing them.
  release() {
    if (!this.local) return;
    for (const t of this.local.getTracks()) {
      this.session.unpublish(t);
      t.stop();
    }
  }

  async startPreview() {
    this.release();
    this.captured = true;
    const { stream, notice } = await capture($('camera-select').value, $('mic-select').value);
    this.use(stream, notice);
    // An element showing a stream without tracks never loads (and holds
    // back the page's load event).
    $('preview').srcObject = stream.getTracks().length ? stream : null;
    this.showMessage('prejoin-message', notice);
    try {
      await listDevices($('camera-select'), $('mic-select'));
    } catch (e) {
      console.warn('list devices', String(e));
    }
    this.updateButtons();
  }

  // prepare gets the camera and microphone before joining, unless we may
  // only watch: a viewer is never asked for them.
  async prepare() {
    if (this.local) return;
    if (!this.mayPublish()) {
      this.local = new MediaStream();
      return;
    }
    await this.startPreview();
  }

  // captureLate publishes after all: the welcome allows what the
  // invitation seemed not to, or a moderator brought us on stage.
  async captureLate() {
    this.captured = true;
    const gen = ++this.captureGen;
    const { stream, notice } = await capture('', '');
    if (!this.mayPublish() || this.ended || gen !== this.captureGen) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    this.use(stream, notice);
    // Not joined now: the next join shows it.
    if (this.session.joined) this.showSelf();
    this.updateButtons();
    if (notice) this.showMessage('meeting-message', notice);
  }

  // showSelf shows our camera on the self tile.
  showSelf() {
    const s = this.session;
    const self = this.tiles.ensure('self', { participant: s.me, name: `${s.name} (you)`, self: true });
    self.dataset.participant = s.me;
    for (const t of this.tracksOf('video')) this.tiles.addTrack(self, t);
  }

  // retire takes our camera and microphone off the connection (the next
  // offer has their sections inactive) and drops the self tile.
  retire() {
    this.captureGen++;
    for (const t of this.local ? this.local.getTracks() : []) this.session.unpublish(t);
    this.tiles.remove('self');
  }

  // dropLocal stops everything we capture: we may not publish.
  dropLocal() {
    this.release();
    this.local = new MediaStream();
    this.notice = '';
    $('preview').srcObject = null;
    if (this.screenTrack) this.stopScreen();
  }

  // releaseDevices turns the camera off after a refused join.
  releaseDevices() {
    if (!this.local) return;
    this.release();
    this.local = null;
    $('preview').srcObject = null;
    this.updateButtons();
  }

  // end stops all local media for good.
  end() {
    this.ended = true;
    this.stopScreen();
    this.tiles.remove('self');
    this.release();
    $('preview').srcObject = null;
  }

  applyMute() {
    for (const t of this.tracksOf('audio')) t.enabled = !this.muted.audio;
    for (const t of this.tracksOf('video')) t.enabled = !this.muted.video;
  }

  setMuted(kind, muted) {
    this.muted[kind] = muted;
    this.applyMute();
    this.updateButtons();
    this.onChange();
    for (const t of this.tracksOf(kind)) this.session.setMuted(t, muted);
  }

  // updateButtons shows the mute state on every control that has one.
  updateButtons() {
    const has = (kind) => this.tracksOf(kind).length > 0;
    const set = (id, on, onText, offText, available) => {
      const b = $(id);
      b.dataset.on = String(on);
      b.setAttribute('aria-pressed', String(!on));
      b.textContent = on ? onText : offText;
      b.disabled = !available;
    };
    set('toggle-mic', !this.muted.audio, 'Mute', 'Unmute', has('audio'));
    set('toggle-cam', !this.muted.video, 'Stop video', 'Start video', has('video'));
    set('pre-mic', !this.muted.audio, 'Microphone on', 'Microphone off', has('audio'));
    set('pre-cam', !this.muted.video, 'Camera on', 'Camera off', has('video'));
    $('preview-box').dataset.off = String(this.muted.video || !has('video'));
    const self = this.tiles.get('self');
    if (self) {
      self.dataset.mutedAudio = String(this.muted.audio || !has('audio'));
      self.dataset.mutedVideo = String(this.muted.video);
    }
  }

  // mutedByModerator: a moderator muted one of our tracks. The server
  // stopped forwarding it; we mute it here too, so the controls tell the
  // truth and unmuting works as usual (it sends mute false, which the
  // owner may). by is the moderator, if known.
  mutedByModerator(t, by) {
    if (!t.muted || !t.mutedBy) return;
    const who = by ? ` (${by.name})` : '';
    if (t.source === 'screen' || t.source === 'screen_audio') {
      if (this.screenTrack) this.stopScreen();
      this.showMessage('meeting-message', `A moderator stopped your screen share${who}.`);
      return;
    }
    const kind = t.kind === 'video' ? 'video' : 'audio';
    this.muted[kind] = true;
    this.applyMute();
    // The server knows already: remembered for a rejoin, not sent now.
    for (const track of this.tracksOf(kind)) this.session.setMuted(track, true, false);
    this.updateButtons();
    this.onChange();
    this.showMessage('meeting-message', kind === 'audio'
      ? `A moderator muted you${who}. Unmute when you want to speak.`
      : `A moderator turned off your camera${who}. Start it again when you are ready.`);
  }

  async startScreen() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
    } catch (e) {
      // Refusing the picker is a choice, not a failure.
      if (e.name === 'NotAllowedError' || e.name === 'AbortError') return;
      const why = e.name === 'NotFoundError' ? 'this browser found no screen or window to share.' : e.message;
      this.showMessage('meeting-message', `Screen sharing failed: ${why}`);
      return;
    }
    const track = stream.getVideoTracks()[0];
    if ('contentHint' in track) track.contentHint = 'detail';
    this.screen = stream;
    this.screenTrack = track;
    track.addEventListener('ended', () => this.stopScreen());
    const tile = this.tiles.ensure('self/screen', { participant: this.session.me, name: 'Your screen', screen: true });
    this.tiles.addTrack(tile, track);
    this.session.publish(track, { source: 'screen', encodings: SCREEN_ENCODINGS });
    $('toggle-screen').textContent = 'Stop sharing';
    $('toggle-screen').setAttribute('aria-pressed', 'true');
  }

  stopScreen() {
    if (this.screenTrack) this.session.unpublish(this.screenTrack);
    if (this.screen) this.screen.getTracks().forEach((t) => t.stop());
    this.screen = null;
    this.screenTrack = null;
    this.tiles.remove('self/screen');
    $('toggle-screen').textContent = 'Share screen';
    $('toggle-screen').setAttribute('aria-pressed', 'false');
  }
}
