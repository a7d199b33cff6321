// The room's recording as the page shows it (docs/recording.md): a plain
// "Recording" badge in the top bar for everyone while the server records
// the room, and for moderators a button that starts and stops it. The
// server's welcome and "recording" events say whether it records; its
// error codes are put in plain words here.
const $ = (id) => document.getElementById(id);

// explainRecording puts a refused request or a failed recording in words.
// starting says which way the request went.
export function explainRecording(err, starting) {
  switch (err.code) {
    case 'recording_unavailable':
      return 'This server does not record meetings (it has no recording directory).';
    case 'recording_failed':
      return starting
        ? 'The recording could not start: the server cannot write its recording files.'
        : 'The recording stopped: the server could not write it (its disk may be full).';
    case 'invalid_state':
      return starting ? 'The meeting is already being recorded.' : 'The meeting is not being recorded.';
    case 'forbidden':
      return 'Only moderators can start or stop recording.';
    default:
      return `Recording: ${err.message || err.code || String(err)}`;
  }
}

export class Recording {
  // request sends a signaling request; showMessage(text) tells the user;
  // system(text) notes a change in the chat log.
  constructor({ request, showMessage, system }) {
    this.request = request;
    this.showMessage = showMessage;
    this.system = system;
    this.on = false;        // the room is being recorded
    this.moderator = false; // we may start and stop it
    this.busy = false;      // a request of ours is under way
    $('record').addEventListener('click', () => this.set(!this.on));
  }

  // start adopts a welcome: it says whether the room records now.
  start(welcome) {
    this.on = !!welcome.recording;
    this.render();
  }

  setModerator(moderator) {
    this.moderator = !!moderator;
    this.render();
  }

  // event follows the server's "recording" event; moderators are told
  // what stopped a recording that failed.
  event(m) {
    const was = this.on;
    this.on = !!m.recording;
    if (m.code) this.showMessage(explainRecording(m, false));
    if (was !== this.on) this.system(this.on ? 'Recording started' : 'Recording stopped');
    this.render();
  }

  // set asks the server to start (true) or stop recording.
  async set(on) {
    if (this.busy) return;
    this.busy = true;
    this.render();
    try {
      await this.request({ type: 'record', recording: on });
    } catch (e) {
      this.showMessage(explainRecording(e, on));
    } finally {
      this.busy = false;
      this.render();
    }
  }

  render() {
    $('recording-badge').hidden = !this.on;
    const button = $('record');
    button.hidden = !this.moderator;
    button.disabled = this.busy;
    button.setAttribute('aria-pressed', String(this.on));
    button.textContent = this.on ? 'Stop recording' : 'Record';
    button.title = this.on ? 'Stop recording the meeting' : 'Record the meeting on the server (everyone is told)';
  }
}
