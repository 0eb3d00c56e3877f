// The connection to /ws, in the course's socket.io shape: socket.on(event,
// handler) and socket.emit(event, data). Frames are {"event", "data"}.
//
// It reconnects with exponential backoff and jitter, resuming after the
// newest message shown (?since=ID), so a dropped connection loses nothing.
// 4401 (session ended) and 4403 (banned) send the page home instead; 4409
// (this session was given a new id, say after a password change) reconnects
// at once with the new cookie.

const HOME_CODES = new Set([4401, 4403]);
const SESSION_RENEWED = 4409;

export class LobbySocket {
  constructor() {
    this.handlers = new Map();
    this.lastSeen = 0;
    this.attempt = 0;
    this.ws = null;
  }

  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(handler);
    return this;
  }

  /** Sends if connected; says whether it did. */
  emit(event, data) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(data === undefined ? { event } : { event, data }));
    return true;
  }

  fire(event, data) {
    for (const handler of this.handlers.get(event) || []) handler(data);
  }

  /** The newest position shown: a reconnect asks for what came after it. */
  seen(position) {
    if (position > this.lastSeen) this.lastSeen = position;
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const since = this.lastSeen > 0 ? `?since=${this.lastSeen}` : '';
    return `${scheme}//${location.host}/ws${since}`;
  }

  connect() {
    this.fire('state', this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.attempt = 0;
      this.fire('state', 'open');
    });
    ws.addEventListener('message', (e) => {
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      this.fire(frame.event, frame.data);
    });
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return;
      if (HOME_CODES.has(e.code)) {
        this.fire('state', 'closed');
        location.assign('/');
        return;
      }
      this.fire('state', 'reconnecting');
      if (e.code === SESSION_RENEWED) {
        this.connect();
        return;
      }
      // 0.5 s, 1 s, 2 s … up to 30 s, each somewhere in [50%, 100%] of that.
      const ceiling = Math.min(30000, 500 * 2 ** this.attempt);
      const delay = ceiling / 2 + Math.random() * (ceiling / 2);
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    });
    return this;
  }
}
