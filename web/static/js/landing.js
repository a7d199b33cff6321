// Landing page: start a meeting under a random readable name, or join one.
const adjectives = ['amber', 'brisk', 'calm', 'daring', 'eager', 'fuzzy', 'gentle', 'happy', 'ivory', 'jolly', 'keen', 'lucky', 'mellow', 'nimble', 'olive', 'proud', 'quiet', 'rapid', 'sunny', 'tidy'];
const nouns = ['otter', 'falcon', 'maple', 'comet', 'harbor', 'meadow', 'pebble', 'lantern', 'canyon', 'willow', 'glacier', 'orchid', 'beacon', 'river', 'summit', 'thistle'];

function pick(list) {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return list[a[0] % list.length];
}

export function randomRoomName() {
  const n = new Uint32Array(1);
  crypto.getRandomValues(n);
  return `${pick(adjectives)}-${pick(nouns)}-${n[0] % 1000}`;
}

document.getElementById('create').addEventListener('click', () => {
  location.href = `/r/${randomRoomName()}`;
});
document.getElementById('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = document.getElementById('room-name').value.trim();
  if (name) location.href = `/r/${encodeURIComponent(name)}`;
});
