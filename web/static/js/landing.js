// Landing page: start a meeting under a random readable name, or join one
// by name or by pasting its invitation link.
const adjectives = ['amber', 'brisk', 'calm', 'daring', 'eager', 'fuzzy', 'gentle', 'happy', 'ivory', 'jolly', 'keen', 'lucky', 'mellow', 'nimble', 'olive', 'proud', 'quiet', 'rapid', 'sunny', 'tidy'];
const nouns = ['otter', 'falcon', 'maple', 'comet', 'harbor', 'meadow', 'pebble', 'lantern', 'canyon', 'willow', 'glacier', 'orchid', 'beacon', 'river', 'summit', 'thistle'];

// The server's rule for room names (docs/protocol.md).
const validRoom = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;

function random(n) {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return a[0] % n;
}

// randomRoomName gives names like "brisk-otter-417": easy to read aloud,
// and 320,000 of them make collisions between meetings unlikely.
export function randomRoomName() {
  return `${adjectives[random(adjectives.length)]}-${nouns[random(nouns.length)]}-${random(1000)}`;
}

// roomFrom accepts a room name or an invitation link.
export function roomFrom(input) {
  const text = input.trim();
  const m = text.match(/\/r\/([^/?#]+)/);
  const name = m ? decodeURIComponent(m[1]) : text;
  return validRoom.test(name) ? name : '';
}

document.getElementById('create').addEventListener('click', () => {
  location.href = `/r/${randomRoomName()}`;
});
// tokenFrom returns the invitation token of a pasted link, or "".
export function tokenFrom(input) {
  const m = input.trim().match(/\/r\/[^/?#]+\?([^#]*)/);
  return m ? new URLSearchParams(m[1]).get('token') || '' : '';
}

document.getElementById('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = document.getElementById('room-name').value;
  const name = roomFrom(input);
  if (!name) {
    document.getElementById('landing-message').textContent = 'Room names are 1-64 letters, digits, - _ or . (not starting with .).';
    return;
  }
  // A pasted invitation keeps its token: without it a secured meeting
  // refuses the join.
  const token = tokenFrom(input);
  location.href = `/r/${encodeURIComponent(name)}${token ? `?token=${encodeURIComponent(token)}` : ''}`;
});
