// Who is typing. Outgoing: `typing` at most once per SEND_EVERY while the
// person types (the server announces a user at most once per 2 s anyway).
// Incoming: each name shows for SHOW_FOR after its last announcement, or
// until that person's next message.

const SEND_EVERY = 1500;
const SHOW_FOR = 4000;

export class Typing {
  constructor(line, me) {
    this.line = line;
    this.me = me.toLowerCase();
    this.typists = new Map();
    this.lastSent = 0;
    this.timer = null;
  }

  /** The person typed: say so, unless we did a moment ago. */
  typed(socket) {
    const now = Date.now();
    if (now - this.lastSent < SEND_EVERY) return;
    if (socket.emit('typing')) this.lastSent = now;
  }

  /** Someone else is typing. */
  heard(name) {
    if (name.toLowerCase() === this.me) return;
    this.typists.set(name, Date.now() + SHOW_FOR);
    this.render();
  }

  /** Their message came: they are done. */
  done(name) {
    if (this.typists.delete(name)) this.render();
  }

  render() {
    const now = Date.now();
    for (const [name, until] of this.typists) {
      if (until <= now) this.typists.delete(name);
    }
    const names = [...this.typists.keys()];
    let words = '';
    if (names.length === 1) words = `${names[0]} is typing…`;
    else if (names.length === 2) words = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) words = 'several people are typing…';
    if (this.line.textContent !== words) this.line.textContent = words;
    clearTimeout(this.timer);
    if (names.length) {
      const next = Math.min(...this.typists.values()) - now;
      this.timer = setTimeout(() => this.render(), Math.max(50, next));
    }
  }
}
