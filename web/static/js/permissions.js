// Permissions and roles (docs/web-client.md "Invitations and roles"): what
// we may do, the welcome's once joined and guessed from the invitation's
// claims before, and the controls that follow from it: a viewer gets no
// camera, microphone or screen controls and is told it is watching, chat
// is hidden without the chat permission, a moderator is badged.
import { expectedPermissions } from './auth.js';

const $ = (id) => document.getElementById(id);
const canShareScreen = !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);

export class Permissions {
  // claims are the invitation's (or null); wantRole is ?role=, where a
  // "viewer" link watches, so its pre-join screen asks for no camera;
  // lecture is the Lecture, whose audience chat may be off.
  constructor({ claims, wantRole, lecture }) {
    const guess = expectedPermissions(claims);
    this.perms = wantRole === 'viewer' ? { ...guess, publish: false } : guess;
    this.role = (claims && claims.role) || '';
    this.lecture = lecture;
  }

  // adopt takes what the server grants.
  adopt(perms, role) {
    this.perms = {
      publish: !!perms.publish, subscribe: !!perms.subscribe, chat: !!perms.chat, moderate: !!perms.moderate,
    };
    this.role = role || '';
    this.render();
  }

  // render shows only the controls we may use.
  render() {
    const { publish, chat, moderate } = this.perms;
    const badge = $('role-badge');
    badge.textContent = moderate ? 'Moderator' : publish ? '' : 'Watching';
    badge.dataset.role = moderate ? 'moderator' : publish ? '' : 'viewer';
    badge.hidden = !badge.textContent;
    for (const id of ['preview-box', 'pre-toggles', 'devices', 'toggle-mic', 'toggle-cam']) $(id).hidden = !publish;
    $('toggle-screen').hidden = !publish || !canShareScreen;
    $('viewer-note').hidden = publish;
    $('prejoin-note').hidden = publish;
    $('prejoin-note').textContent = publish ? '' : 'You are invited to watch and listen: your camera and microphone will not be used.';
    $('join').textContent = publish ? 'Join meeting' : 'Join to watch';
    for (const id of ['chat-title', 'chat-log']) $(id).hidden = !chat;
    // In a lecture whose audience chat is off, the audience reads but cannot write.
    $('chat-form').hidden = !chat || !this.lecture.mayChat();
    $('toggle-side').textContent = chat ? 'Chat' : 'People';
    this.lecture.setPermissions(this.perms);
  }
}
