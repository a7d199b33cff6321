// Signaling: one WebSocket speaking docs/protocol.md. Requests carry an id
// and resolve with the matching response; everything else goes to onmessage.

export class SignalError extends Error {
  // extra: the error message's retryAfter (server_busy, seconds) and url
  // (redirect: the server to join instead).
  constructor(code, message, extra = {}) {
    super(message || code);
    this.code = code;
    this.retryAfter = extra.retryAfter || 0;
    this.url = extra.url || '';
  }
}

export class Signaling {
  constructor(url) {
    this.url = url;
    this.nextId = 1;
    this.pending = new Map();
    this.onmessage = () => {};
    this.onclose = () => {};
    this.closedByUs = false;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new SignalError('unreachable', 'Cannot reach the server.'));
      ws.onmessage = (e) => this.dispatch(e.data);
      ws.onclose = (e) => {
        for (const { reject: rej } of this.pending.values()) rej(new SignalError('closed', 'Connection closed.'));
        this.pending.clear();
        this.onclose(e, this.closedByUs);
      };
    });
  }

  dispatch(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (m.id && this.pending.has(m.id) && ['welcome', 'answer', 'ok', 'error'].includes(m.type)) {
      const { resolve, reject } = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.type === 'error') reject(new SignalError(m.code, m.message, m));
      else resolve(m);
      return;
    }
    this.onmessage(m);
  }

  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  request(m, timeoutMs = 15000) {
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalError('timeout', `No answer to ${m.type}.`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.send({ ...m, id });
    });
  }

  close() {
    this.closedByUs = true;
    if (this.ws) this.ws.close(1000);
  }
}
