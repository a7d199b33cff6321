// People, chat and moderation: the people list (#people) with each
// person's role and mic/camera state, the active speaker, the chat log and
// box, and a moderator's Mute / Move to audience / Remove buttons. Owns the
// chat history and who is speaking; the members and their tracks are the
// session's.

const $ = (id) => document.getElementById(id);

export class People {
  // session is the Session (members, tracks, me, name, joined, request);
  // tiles the Tiles (their mute marks); permissions ours (perms, role);
  // isLecture() whether the room is a lecture; showMessage(where, text)
  // and explain(err) tell the user.
  constructor({ session, tiles, permissions, isLecture, showMessage, explain }) {
    this.session = session;
    this.tiles = tiles;
    this.permissions = permissions;
    this.isLecture = isLecture;
    this.showMessage = showMessage;
    this.explain = explain;
    this.chat = [];    // {from, name, text, at}, kept across rejoins
    this.speaker = ''; // the active speaker's participant id
    // Moderator actions. No confirmation dialog: the buttons sit apart
    // from the names, and a removed person can be invited again.
    $('people').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-action]');
      const li = b && b.closest('li');
      if (!li || b.disabled) return;
      if (b.dataset.action === 'remove' || b.dataset.action === 'demote') b.disabled = true;
      this.moderate(b.dataset.action, li.dataset.participant);
    });
    $('chat-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.sendChat();
    });
  }

  // render lists everyone with their role and mic/camera state. Rows are
  // updated in place, so a button is not replaced under a pointer when
  // someone starts speaking.
  render() {
    const s = this.session;
    const ul = $('people');
    const self = { id: s.me, name: `${s.name} (you)`, role: this.permissions.role };
    const all = s.joined || s.me ? [self, ...s.members.values()] : [];
    const old = new Map([...ul.children].map((li) => [li.dataset.participant, li]));
    const items = all.map((p) => {
      const view = this.view(p);
      const key = JSON.stringify(view);
      let li = old.get(p.id);
      old.delete(p.id);
      if (!li || li.dataset.view !== key) {
        const fresh = personItem(p, view);
        fresh.dataset.view = key;
        if (li) li.replaceWith(fresh);
        li = fresh;
      }
      li.dataset.speaking = String(!!p.id && p.id === this.speaker);
      return li;
    });
    for (const li of old.values()) li.remove();
    items.forEach((li, i) => {
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
    });
    $('people-count').textContent = all.length ? `(${all.length})` : '';
  }

  // micTracks: a participant's microphone tracks as we know them.
  micTracks(participant) {
    return [...this.session.tracks.values()].filter((t) => t.participant === participant && t.kind === 'audio' && t.source === 'microphone');
  }

  // view is what a person's row shows, and which buttons a moderator gets.
  view(p) {
    const self = p.id === this.session.me;
    const tile = this.tiles.get(self ? 'self' : p.id);
    const off = [];
    if (tile && tile.dataset.mutedAudio === 'true') off.push('mic off');
    if (tile && tile.dataset.mutedVideo === 'true') off.push('cam off');
    const view = { name: p.name, role: p.role || '', off: off.join(' · ') };
    if (this.permissions.perms.moderate && this.session.joined && !self) {
      const mics = this.micTracks(p.id);
      // mute: "none" (nothing to mute), "muted" or "on".
      view.mute = !mics.length ? 'none' : mics.every((t) => t.muted) ? 'muted' : 'on';
      view.remove = true;
      // A lecture's stage members may be sent back to the audience.
      view.demote = this.isLecture() && p.role !== 'moderator';
    }
    return view;
  }

  // moderate mutes a participant's microphone ("mute"), removes them from
  // the meeting ("remove") or moves them to a lecture's audience
  // ("demote"). Failures are shown, not thrown; resolves to whether the
  // server accepted.
  async moderate(action, participant) {
    const s = this.session;
    const p = s.members.get(participant);
    const name = p ? p.name : 'that participant';
    if (!s.joined || !this.permissions.perms.moderate) return false;
    try {
      if (action === 'mute') {
        const mics = this.micTracks(participant).filter((t) => !t.muted);
        if (!mics.length) return false;
        await Promise.all(mics.map((t) => s.request({ type: 'mute', trackId: t.id, muted: true })));
      } else if (action === 'remove') {
        await s.request({ type: 'remove', participantId: participant });
      } else if (action === 'demote') {
        await s.request({ type: 'promote', participantId: participant, role: 'viewer' });
      } else {
        return false;
      }
      return true;
    } catch (err) {
      const what = action === 'demote' ? `move ${name} to the audience` : `${action} ${name}`;
      this.showMessage('meeting-message', `Could not ${what}: ${this.explain(err)}`);
      const button = $('people').querySelector(`li[data-participant="${CSS.escape(participant)}"] button[data-action="${action}"]`);
      if (button && action !== 'mute') button.disabled = false;
      this.render();
      return false;
    }
  }

  setSpeaker(id) {
    this.speaker = id;
    this.tiles.setSpeaker(id);
    this.render();
  }

  addChat(from, name, text) {
    this.chat.push({ from, name, text, at: Date.now() });
    const li = document.createElement('li');
    if (from === this.session.me) li.className = 'mine';
    const b = document.createElement('b');
    b.textContent = `${name}: `;
    li.append(b, document.createTextNode(text));
    appendChatLine(li);
  }

  // system adds a line of our own (joins, leaves) to the chat log.
  system(text) {
    const li = document.createElement('li');
    li.className = 'system';
    li.textContent = text;
    appendChatLine(li);
  }

  async sendChat() {
    const s = this.session;
    const text = $('chat-input').value.trim();
    if (!text) return;
    if (!s.joined) {
      this.showMessage('meeting-message', 'Not connected: the message was not sent.');
      return;
    }
    $('chat-input').value = '';
    try {
      await s.request({ type: 'chat', text });
      this.addChat(s.me, s.name, text);
      this.showMessage('meeting-message', '');
    } catch (err) {
      $('chat-input').value = text;
      this.showMessage('meeting-message', `Message not sent: ${this.explain(err)}`);
    }
  }
}

function appendChatLine(li) {
  const log = $('chat-log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function personItem(p, view) {
  const li = document.createElement('li');
  li.dataset.participant = p.id;
  if (view.role) li.dataset.role = view.role;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = view.name;
  li.append(who);
  if (view.role === 'viewer' || view.role === 'moderator') {
    const r = document.createElement('span');
    r.className = 'role';
    r.textContent = view.role;
    li.append(r);
  }
  if (view.off) {
    const s = document.createElement('span');
    s.className = 'state';
    s.textContent = view.off;
    li.append(s);
  }
  const button = (action, text, label, disabled) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `small ${action}`;
    b.dataset.action = action;
    b.textContent = text;
    b.title = label;
    b.setAttribute('aria-label', label);
    b.disabled = disabled;
    li.append(b);
  };
  if (view.mute && (view.mute !== 'none' || view.role !== 'viewer')) {
    const muted = view.mute === 'muted';
    button('mute', muted ? 'Muted' : 'Mute', muted ? `${p.name} is muted` : `Mute ${p.name}`, view.mute !== 'on');
  }
  if (view.demote) button('demote', 'Move to audience', `Move ${p.name} to the audience`, false);
  if (view.remove) button('remove', 'Remove', `Remove ${p.name} from the meeting`, false);
  return li;
}
