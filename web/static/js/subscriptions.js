// Adaptive subscribing (docs/web-client.md "Subscribing"): each received
// video asks the server (subscribe) for at most what its tile shows, in
// device pixels; tiles off screen, not laid out, or whose camera is off are
// paused. Owns the server's layer decisions (layers messages).
import { tileKey } from './tiles.js';

// A video tile may receive a layer up to this much larger than itself: with
// layers a factor 2 apart, the next lower one would be blurred by upscaling.
const SIZE_ALLOWANCE = 1.5;
const DEBOUNCE_MS = 250;
// How often decisions are checked for a stale size cap; a request is
// repeated REPEAT_MIN_MS apart at first (a publisher's layers come within
// seconds), then ever less often, up to REPEAT_MAX_MS apart.
const CHECK_EVERY_MS = 1000;
const REPEAT_MIN_MS = 2000;
const REPEAT_FAST = 5;
const REPEAT_MAX_MS = 30000;
const LAYER_RANK = { low: 0, medium: 1, high: 2 };

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

export class Subscriptions {
  // tracks() is the session's track map (id -> info); tile(key) a tile
  // element; thumbnails() whether camera tiles are thumbnails (a screen is
  // on the stage); request(m) sends a request of the joined session;
  // joined() whether there is one.
  constructor({ tracks, tile, thumbnails, request, joined, debug }) {
    this.tracks = tracks;
    this.tile = tile;
    this.thumbnails = thumbnails;
    this.request = request;
    this.joined = joined;
    this.debug = debug;
    this.layers = new Map(); // track id -> the server's latest decision
    this.sent = new Map();   // track id -> the subscription last sent
    this.last = '';          // the last request, to send only changes
    this.timer = null;
    this.repeatAt = 0;
    this.repeats = 0;        // repeats of the current request
    document.addEventListener('visibilitychange', () => this.schedule());
    window.addEventListener('resize', () => this.schedule());
    this.watchPixelRatio();
    setInterval(() => this.checkCaps(), CHECK_EVERY_MS);
  }

  // watchPixelRatio: a window moved to a screen of another pixel density
  // (or zoomed) needs other layers, though no element changed size.
  watchPixelRatio() {
    const query = matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    query.addEventListener('change', () => {
      this.schedule();
      this.watchPixelRatio();
    }, { once: true });
  }

  // schedule sends the subscriptions soon, once for a burst of changes.
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.send(), DEBOUNCE_MS);
  }

  // reset forgets a session's decisions (a dropped connection).
  reset() {
    clearTimeout(this.timer);
    this.layers.clear();
    this.sent.clear();
    this.last = '';
  }

  setLayers(decisions) {
    for (const d of decisions || []) this.layers.set(d.trackId, d);
  }

  forget(trackId) {
    this.layers.delete(trackId);
    this.sent.delete(trackId);
  }

  // wanted lists what every received video should get now.
  wanted() {
    const dpr = window.devicePixelRatio || 1;
    const thumbnails = this.thumbnails();
    const subs = [];
    for (const [id, info] of this.tracks()) {
      if (info.kind !== 'video' || !info.subscribed) continue;
      const tile = this.tile(tileKey(info));
      if (!tile) continue;
      // A hidden browser tab is not paused: people glance back at meetings,
      // and a picture that must first wait for a keyframe feels broken. A
      // camera its owner turned off sends nothing worth forwarding.
      const camera = info.source !== 'screen';
      subs.push({
        trackId: id,
        paused: !onScreen(tile) || (camera && !!info.muted),
        // Shown in a hidden tab: the first video paused when the server
        // sheds load.
        background: document.hidden,
        // With a screen share on the stage, camera tiles are thumbnails.
        maxLayer: camera && thumbnails ? 'low' : 'high',
        maxWidth: Math.round(tile.clientWidth * dpr * SIZE_ALLOWANCE) || 0,
        maxHeight: Math.round(tile.clientHeight * dpr * SIZE_ALLOWANCE) || 0,
      });
    }
    return subs;
  }

  // send sends the subscriptions when they changed, or again (repeat).
  send(repeat = false) {
    if (!this.joined()) return;
    const subs = this.wanted();
    const text = JSON.stringify(subs);
    if (!subs.length || (text === this.last && !repeat)) return;
    if (text !== this.last) {
      // A new request: its decision is judged afresh before any repeat.
      this.repeats = 0;
      this.repeatAt = Date.now() + REPEAT_MIN_MS;
    }
    this.last = text;
    this.sent = new Map(subs.map((s) => [s.trackId, s]));
    if (this.debug) console.log('subscribe', text);
    this.request({ type: 'subscribe', subscriptions: subs }).catch((e) => {
      this.last = '';
      console.warn('subscribe', String(e));
    });
  }

  // checkCaps repeats the request when the server's size cap looks stale.
  // The server turns maxWidth/maxHeight into a layer once, from the layers
  // it has seen so far; a publisher adds its higher layers seconds after it
  // starts (as its bandwidth estimate grows) and drops and restores them
  // under load. A video capped below the layer asked for ("requested") that
  // shows at most half the size it may have was judged too early: asking
  // again lets the server judge with the layers it has now.
  checkCaps() {
    if (!this.joined() || Date.now() < this.repeatAt) return;
    for (const [id, sub] of this.sent) {
      if (sub.paused || !this.capLooksStale(id, sub)) continue;
      this.repeats++;
      const slower = 2 ** Math.max(0, this.repeats - REPEAT_FAST);
      this.repeatAt = Date.now() + Math.min(REPEAT_MIN_MS * slower, REPEAT_MAX_MS);
      if (this.debug) console.log('subscribe again: the size cap of', id, 'looks stale');
      this.send(true);
      return;
    }
  }

  capLooksStale(id, sub) {
    const d = this.layers.get(id);
    if (!d || d.paused || d.reason !== 'requested' || !d.current || d.current !== d.target) return false;
    if (LAYER_RANK[d.target] >= LAYER_RANK[sub.maxLayer]) return false;
    const info = this.tracks().get(id);
    const tile = info && this.tile(tileKey(info));
    const video = tile && tile.querySelector('video');
    if (!video || !video.videoWidth || !video.videoHeight) return false;
    const doubleFits = (size, max) => !max || size * 2 <= max;
    return doubleFits(video.videoWidth, sub.maxWidth) && doubleFits(video.videoHeight, sub.maxHeight);
  }
}
