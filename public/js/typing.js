// Who is typing, in each room; the line under the conversation shows the
// open room's. Outgoing: `typing` at most once per SEND_EVERY while the
// person types (the server announces a user at most once per 2 s and room
// anyway). Incoming: each name shows for SHOW_FOR after its last
// announcement, or until that person's next message in the room.

import { LOBBY } from './rooms.js';

const SEND_EVERY = 1500;
const SHOW_FOR = 4000;

export class Typing {
  constructor(line, me) {
    this.line = line;
    this.me = me.toLowerCase();
    /** room → (name → until when it shows) */
    this.typists = new Map();
    this.room = LOBBY;
    this.lastSent = 0;
    this.sentIn = null;
    this.timer = null;
  }

  /** The room on screen. */
  show(room) {
    this.room = room;
    this.render();
  }

  /** The person typed in `room`: say so, unless we did a moment ago. */
  typed(socket, room) {
    const now = Date.now();
    if (room === this.sentIn && now - this.lastSent < SEND_EVERY) return;
    // The lobby's is the first release's `typing` without data.
    const sent = room === LOBBY ? socket.emit('typing') : socket.emit('typing', { room });
    if (sent) {
      this.lastSent = now;
      this.sentIn = room;
    }
  }

  /** Someone else is typing in `room`. */
  heard(room, name) {
    if (name.toLowerCase() === this.me) return;
    if (!this.typists.has(room)) this.typists.set(room, new Map());
    this.typists.get(room).set(name, Date.now() + SHOW_FOR);
    if (room === this.room) this.render();
  }

  /** Their message came: they are done. */
  done(room, name) {
    if (this.typists.get(room)?.delete(name) && room === this.room) this.render();
  }

  /** A room this user is no longer in. */
  forget(room) {
    this.typists.delete(room);
  }

  render() {
    const now = Date.now();
    for (const [room, names] of this.typists) {
      for (const [name, until] of names) {
        if (until <= now) names.delete(name);
      }
      if (names.size === 0) this.typists.delete(room);
    }
    const here = this.typists.get(this.room) || new Map();
    const names = [...here.keys()];
    let words = '';
    if (names.length === 1) words = `${names[0]} is typing…`;
    else if (names.length === 2) words = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) words = 'several people are typing…';
    if (this.line.textContent !== words) this.line.textContent = words;
    clearTimeout(this.timer);
    if (names.length) {
      const next = Math.min(...here.values()) - now;
      this.timer = setTimeout(() => this.render(), Math.max(50, next));
    }
  }
}
