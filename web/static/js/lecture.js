// Lecture rooms (docs/lecture-client.md): a few people on stage, an
// audience that watches. This module keeps the lecture's own controls: the
// audience count in the top bar, the audience's "Raise hand" toggle and the
// moderators' list of raised hands with "Invite to stage". Moving someone
// between the stage and the audience is a "promote" request; what changes
// for the page itself (publishing or not) is room.js's job.

const $ = (id) => document.getElementById(id);

export class Lecture {
  // request sends a signaling request (resolving to the response);
  // onError shows a sentence to the user.
  constructor({ request, onError }) {
    this.request = request;
    this.onError = onError;
    this.active = false;     // the room is a lecture (welcome.lecture)
    this.audience = 0;       // viewers watching without being members
    this.hands = new Map();  // participant id -> participant, for moderators
    this.raised = false;     // our own hand
    this.perms = { publish: true, moderate: false };
    this.audienceChat = true; // a moderator may turn the audience's chat off
    this.onChatPolicy = () => {}; // room.js re-renders the chat when it changes
    this.joined = false;
    $('audience-chat').addEventListener('click', () => this.setAudienceChat(!this.audienceChat));
    $('raise-hand').addEventListener('click', () => this.raiseHand(!this.raised));
    $('hands').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-action="invite"]');
      const li = b && b.closest('li');
      if (!li || b.disabled) return;
      b.disabled = true;
      this.promote(li.dataset.participant, 'speaker');
    });
  }

  // start adopts a welcome: a new session, so no hand of ours is raised.
  start(welcome) {
    this.active = !!welcome.lecture;
    this.audience = welcome.audience || 0;
    this.hands = new Map((welcome.hands || []).map((p) => [p.id, p]));
    this.raised = false;
    this.audienceChat = welcome.audienceChat !== false;
    this.joined = true;
    document.body.classList.toggle('lecture', this.active);
    this.render();
  }

  // inAudience: we watch without being on stage.
  inAudience() {
    return this.active && !this.perms.publish;
  }

  // mayChat: the audience's chat may be off in a lecture.
  mayChat() {
    return !(this.inAudience() && !this.audienceChat);
  }

  // chatPolicy follows lecture_settings from the server.
  chatPolicy(on) {
    this.audienceChat = !!on;
    this.render();
    this.onChatPolicy(this.audienceChat);
  }

  // setAudienceChat (moderators) turns the audience's chat on or off.
  async setAudienceChat(on) {
    if (!this.joined || !this.active || !this.perms.moderate) return false;
    try {
      await this.request({ type: 'lecture_settings', audienceChat: on });
      return true;
    } catch (err) {
      this.onError(`Could not turn the audience's chat ${on ? 'on' : 'off'}`, err);
      return false;
    }
  }

  // stop forgets the session (a dropped connection, leaving).
  stop() {
    this.joined = false;
    this.raised = false;
    this.hands.clear();
    this.render();
  }

  // setPermissions follows our permissions: the audience raises hands,
  // moderators see them. Coming on stage lowers our hand (the server does
  // the same).
  setPermissions(perms) {
    this.perms = { publish: !!perms.publish, moderate: !!perms.moderate };
    if (perms.publish) this.raised = false;
    if (!perms.moderate) this.hands.clear();
    this.render();
  }

  // setAudience: the server's throttled count ("audience" is omitted
  // from the JSON when it is 0).
  setAudience(n) {
    this.audience = n || 0;
    this.render();
  }

  // hand: a moderator learns that someone raised or lowered a hand.
  hand(participant, raised) {
    if (!participant) return;
    if (raised) this.hands.set(participant.id, participant);
    else this.hands.delete(participant.id);
    this.render();
  }

  async raiseHand(raised) {
    if (!this.joined || !this.active || this.perms.publish) return false;
    const before = this.raised;
    this.raised = raised;
    this.render();
    try {
      await this.request({ type: 'raise_hand', raised });
      return true;
    } catch (err) {
      this.raised = before;
      this.render();
      this.onError(`Could not ${raised ? 'raise' : 'lower'} your hand`, err);
      return false;
    }
  }

  // promote gives a participant another role: "speaker" invites them on
  // stage, "viewer" moves them back to the audience.
  async promote(id, role) {
    if (!this.joined || !this.perms.moderate) return false;
    try {
      await this.request({ type: 'promote', participantId: id, role });
      return true;
    } catch (err) {
      const p = this.hands.get(id);
      const name = p ? p.name : 'that participant';
      this.onError(role === 'viewer' ? `Could not move ${name} to the audience` : `Could not invite ${name} to the stage`, err);
      const b = $('hands').querySelector(`li[data-participant="${CSS.escape(id)}"] button`);
      if (b) b.disabled = false;
      return false;
    }
  }

  render() {
    const badge = $('audience-count');
    // Shown in every lecture, and in a meeting that has WHEP viewers.
    badge.hidden = !this.joined || (!this.active && this.audience === 0);
    badge.textContent = `${this.audience} watching`;
    badge.dataset.count = String(this.audience);

    const button = $('raise-hand');
    button.hidden = !this.joined || !this.active || this.perms.publish;
    button.setAttribute('aria-pressed', String(this.raised));
    button.textContent = this.raised ? 'Lower hand' : 'Raise hand';
    button.title = this.raised ? 'Lower your hand' : 'Ask the moderators to let you speak';

    const chat = $('audience-chat');
    chat.hidden = !this.joined || !this.active || !this.perms.moderate;
    chat.setAttribute('aria-pressed', String(this.audienceChat));
    chat.textContent = this.audienceChat ? 'Audience chat on' : 'Audience chat off';
    chat.title = this.audienceChat ? 'Stop the audience from writing in the chat' : 'Let the audience write in the chat';

    const showHands = this.joined && this.active && this.perms.moderate;
    for (const id of ['hands-title', 'hands']) $(id).hidden = !showHands;
    $('hands-count').textContent = this.hands.size ? `(${this.hands.size})` : '';
    const ul = $('hands');
    const old = new Map([...ul.children].map((li) => [li.dataset.participant, li]));
    // In the order hands were raised; rows stay in place, so a button is
    // not replaced under a pointer.
    const items = [...this.hands.values()].map((p) => {
      const li = old.get(p.id) || handItem(p);
      old.delete(p.id);
      return li;
    });
    for (const li of old.values()) li.remove();
    items.forEach((li, i) => {
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
    });
  }
}

function handItem(p) {
  const li = document.createElement('li');
  li.dataset.participant = p.id;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = p.name;
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'small invite';
  b.dataset.action = 'invite';
  b.textContent = 'Invite to stage';
  b.title = `Let ${p.name} speak: their camera and microphone go on stage`;
  b.setAttribute('aria-label', `Invite ${p.name} to the stage`);
  li.append(who, b);
  return li;
}
