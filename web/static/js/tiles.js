// Tiles: one <figure class="tile"> per participant camera (key = participant
// id, or "self") and one per screen share (key = "<participant>/screen", or
// "self/screen"), on the stage. Their data-attributes are part of the
// automation contract in docs/web-client.md.
// In a lecture (docs/lecture-client.md) the presenter, whose screen share
// is on the stage, has its camera beside the share, and the other speakers
// are a row of thumbnails under it.
import { layoutGrid, layoutRow, layoutStage } from './layout.js';

const PALETTE = ['#5b8def', '#e07a5f', '#81b29a', '#f2cc8f', '#b388eb', '#4ecdc4', '#ef476f', '#ffd166'];

// tileKey is the key of the tile that shows a track (its info as the
// server announced it).
export function tileKey(info) {
  const screen = info.source === 'screen' || info.source === 'screen_audio';
  return screen ? `${info.participant}/screen` : info.participant;
}

// hasTile: viewers are listed under People but get no tile: a lecture's
// audience would otherwise fill the speakers' screens with avatars.
export function hasTile(participant) {
  return participant.role !== 'viewer';
}

function initials(name) {
  const words = name.replace(/\(.*?\)/g, '').trim().split(/\s+/).filter(Boolean);
  const letters = words.slice(0, 2).map((w) => [...w][0].toUpperCase());
  return letters.join('') || '?';
}

function colorFor(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

export class Tiles {
  // grid and stage are the containers; template is the <template> of a
  // tile; onChange runs after tiles are added, removed, resized or scrolled
  // into or out of view.
  constructor({ grid, stage, template, onChange, onSoundBlocked }) {
    this.grid = grid;
    this.stage = stage;
    this.template = template;
    this.onChange = onChange;
    this.onSoundBlocked = onSoundBlocked;
    this.map = new Map();
    this.speaker = '';
    this.lecture = false;
    this.visibility = new IntersectionObserver((entries) => {
      for (const e of entries) e.target.inView = e.isIntersecting;
      this.onChange();
    });
    // A container that changes size resizes its tiles.
    const relayout = () => {
      this.layout();
      this.onChange();
    };
    new ResizeObserver(relayout).observe(grid);
    new ResizeObserver(relayout).observe(stage);
  }

  get(key) {
    return this.map.get(key);
  }

  all() {
    return [...this.map.values()];
  }

  // ensure returns the tile for key, creating it if needed.
  ensure(key, { participant, name, self = false, screen = false }) {
    let tile = this.map.get(key);
    if (tile) return tile;
    tile = this.template.content.firstElementChild.cloneNode(true);
    tile.dataset.key = key;
    tile.dataset.participant = participant;
    tile.dataset.source = screen ? 'screen' : 'camera';
    tile.dataset.hasVideo = 'false';
    tile.dataset.mutedVideo = 'false';
    tile.dataset.mutedAudio = 'false';
    tile.dataset.speaking = String(!!participant && participant === this.speaker);
    tile.classList.toggle('self', self);
    const video = tile.querySelector('video');
    // Our own voice must never play back; our own screen neither.
    video.muted = self || key === 'self/screen';
    // The stream is attached once it has a track: a media element showing
    // an empty stream never loads, and holds back the page's load event.
    tile.stream = new MediaStream();
    this.rename(tile, name);
    // A share goes before a presenter's camera, which stays last.
    if (screen) this.stage.insertBefore(tile, this.stage.querySelector(':scope > .tile.presenter'));
    else this.grid.append(tile);
    this.map.set(key, tile);
    this.visibility.observe(tile);
    this.changed();
    return tile;
  }

  rename(tile, name) {
    tile.querySelector('.name').textContent = name;
    const avatar = tile.querySelector('.avatar');
    avatar.textContent = initials(name);
    avatar.style.backgroundColor = colorFor(name);
  }

  remove(key) {
    const tile = this.map.get(key);
    if (!tile) return;
    this.visibility.unobserve(tile);
    for (const t of tile.stream.getTracks()) tile.stream.removeTrack(t);
    tile.remove();
    this.map.delete(key);
    this.changed();
  }

  // removeRemote drops every tile but our own (before a rejoin).
  removeRemote() {
    for (const key of [...this.map.keys()]) if (!key.startsWith('self')) this.remove(key);
  }

  // addTrack shows a track on a tile and starts playback.
  addTrack(tile, track) {
    for (const t of tile.stream.getTracks()) if (t.kind === track.kind) tile.stream.removeTrack(t);
    tile.stream.addTrack(track);
    if (track.kind === 'video') tile.dataset.hasVideo = 'true';
    const video = tile.querySelector('video');
    if (video.srcObject !== tile.stream) video.srcObject = tile.stream;
    this.play(tile);
  }

  removeTrack(tile, track) {
    if (!tile.stream.getTracks().includes(track)) return;
    tile.stream.removeTrack(track);
    if (track.kind === 'video') tile.dataset.hasVideo = String(tile.stream.getVideoTracks().length > 0);
  }

  // play starts a tile; when the browser refuses sound before the user has
  // interacted with the page, it plays muted and asks for a click.
  play(tile) {
    const video = tile.querySelector('video');
    video.play().catch((e) => {
      if (e.name !== 'NotAllowedError' || video.muted) return;
      video.muted = true;
      video.dataset.soundBlocked = 'true';
      video.play().catch(() => {});
      this.onSoundBlocked();
    });
  }

  // unblockSound unmutes tiles that were muted by the autoplay policy.
  unblockSound() {
    for (const tile of this.map.values()) {
      const video = tile.querySelector('video');
      if (video.dataset.soundBlocked) {
        delete video.dataset.soundBlocked;
        video.muted = false;
        video.play().catch(() => {});
      }
    }
  }

  // setLecture switches the lecture stage layout on or off.
  setLecture(on) {
    if (this.lecture === on) return;
    this.lecture = on;
    this.changed();
  }

  // presenter is, in a lecture, whose screen share is first on the stage.
  presenter() {
    if (!this.lecture) return '';
    const share = [...this.stage.children].find((t) => t.dataset.source === 'screen');
    return share ? share.dataset.participant : '';
  }

  // arrange puts the presenter's camera on the stage, after its share, and
  // every other camera in the grid.
  arrange() {
    const presenter = this.presenter();
    for (const tile of this.map.values()) {
      if (tile.dataset.source !== 'camera') continue;
      const beside = !!presenter && tile.dataset.participant === presenter;
      tile.classList.toggle('presenter', beside);
      if (!beside) tile.style.removeProperty('--tile-w');
      const home = beside ? this.stage : this.grid;
      if (tile.parentElement === home) continue;
      home.append(tile);
      // Moved, not removed: playback goes on, but a paused element is
      // started again to be sure.
      const video = tile.querySelector('video');
      if (video.srcObject && video.paused) this.play(tile);
    }
  }

  // showMuted marks a remote track's tile muted or not (a screen share's
  // video has no muted state to show).
  showMuted(info) {
    const tile = this.map.get(tileKey(info));
    if (!tile) return;
    if (info.kind === 'audio') tile.dataset.mutedAudio = String(!!info.muted);
    else if (info.source !== 'screen') tile.dataset.mutedVideo = String(!!info.muted);
  }

  // showUndecodable says on a tile that this browser cannot show its
  // video (the publisher's codec is not one it decodes), or clears it.
  showUndecodable(info, undecodable) {
    const tile = this.map.get(tileKey(info));
    if (!tile || info.kind !== 'video') return;
    tile.dataset.undecodable = String(undecodable);
    const note = tile.querySelector('.tile-note');
    note.hidden = !undecodable;
    note.textContent = undecodable ? `This browser cannot play this video (${info.codec.replace('video/', '')}).` : '';
  }

  setSpeaker(participant) {
    this.speaker = participant;
    for (const tile of this.map.values()) {
      tile.dataset.speaking = String(tile.dataset.source === 'camera' && tile.dataset.participant === participant);
    }
  }

  changed() {
    this.arrange();
    this.stage.parentElement.classList.toggle('has-stage', this.stage.children.length > 0);
    this.layout();
    this.onChange();
  }

  layout() {
    if (this.lecture && this.stage.children.length > 0) {
      layoutRow(this.grid);
      layoutStage(this.stage, this.stage.querySelector(':scope > .tile.presenter'));
      return;
    }
    layoutGrid(this.grid);
    layoutGrid(this.stage);
  }
}
