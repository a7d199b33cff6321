// What the page tells the user: the status in the top bar (#status with
// data-state idle, ok, reconnecting or error), messages (#prejoin-message,
// #meeting-message), and plain-language explanations of the server's error
// codes.
import { AUTH_MESSAGES } from './auth.js';

const $ = (id) => document.getElementById(id);

const CODES = {
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

// Why the session reconnects (session.js), as the top bar says it.
const RECONNECT_REASONS = {
  lost: 'Connection lost',
  restarting: 'The server is restarting',
  media_failed: 'Media connection failed',
  unreachable: 'Server unreachable',
};

export function explain(err) {
  if (err.code === 'server_busy') {
    const wait = err.retryAfter ? `in ${err.retryAfter} s` : 'in a moment';
    return `The server is full right now; try again ${wait}.`;
  }
  return CODES[err.code] || err.message || String(err);
}

// explainJoin: a join refused as "forbidden" means a moderator removed
// this invitation's holder.
export function explainJoin(err) {
  if (err.code === 'forbidden') return 'A moderator removed you from this meeting: you cannot join it again.';
  return explain(err);
}

export function showMessage(where, text) {
  $(where).textContent = text;
}

let countdown = null;

export function setStatus(text, kind = 'ok') {
  clearInterval(countdown);
  countdown = null;
  $('status').textContent = text;
  $('status').dataset.state = kind;
}

// showReconnecting counts down to the next attempt (at, a Date.now() time),
// or says an attempt is under way (at 0).
export function showReconnecting(why, at) {
  if (!at) {
    setStatus('Reconnecting…', 'reconnecting');
    return;
  }
  const reason = RECONNECT_REASONS[why] || RECONNECT_REASONS.lost;
  const tick = () => {
    const s = Math.max(0, Math.ceil((at - Date.now()) / 1000));
    $('status').textContent = `${reason}: reconnecting in ${s} s…`;
  };
  setStatus('', 'reconnecting');
  tick();
  countdown = setInterval(tick, 1000);
}

export function status() {
  return { text: $('status').textContent, state: $('status').dataset.state };
}
