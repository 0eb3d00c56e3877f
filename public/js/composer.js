// The send box: writing to the open room (the lobby's messages as the first
// release's plain string, the others' as {room, message}), telling others
// we type, and a draft kept per room while one looks elsewhere.
//
// A room this tab has just joined or made through the API may not be known
// yet to the socket's side of the server (the answer can come before the
// socket's `room joined`): what is written there waits for that event
// (ARRIVAL_WAIT at most) instead of being refused.

import { LOBBY } from './rooms.js';

const ARRIVAL_WAIT = 3000;

export class Composer {
  /**
   * @param {object} options
   * @param {HTMLFormElement} options.form
   * @param {HTMLInputElement} options.input
   * @param {import('./socket.js').LobbySocket} options.socket
   * @param {import('./typing.js').Typing} options.typing
   * @param {(room: number) => void} options.sent a message went to `room`
   * @param {(words: string) => void} options.complain
   */
  constructor({ form, input, socket, typing, sent, complain }) {
    this.input = input;
    this.socket = socket;
    this.room = LOBBY;
    this.drafts = new Map();
    this.arriving = new Map();
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      const room = this.room;
      const waiting = this.arriving.get(room);
      if (waiting ? waiting.push(text) > 0 : this.send(room, text)) {
        input.value = '';
        this.drafts.delete(room);
        sent(room);
      } else {
        complain('Not connected yet; your message is still in the box.');
      }
      input.focus();
    });
    input.addEventListener('input', () => {
      if (input.value.trim() && !this.arriving.has(this.room)) typing.typed(socket, this.room);
    });
  }

  /** Says whether it went. */
  send(room, text) {
    const data = room === LOBBY ? text : { room, message: text };
    return this.socket.emit('chat message', data);
  }

  /** The box now writes to `room`: the draft of the one before is kept, this one's brought back. */
  switchTo(room) {
    if (room === this.room) return;
    this.drafts.set(this.room, this.input.value);
    this.room = room;
    this.input.value = this.drafts.get(room) || '';
  }

  /** Joined or made here through the API: hold what is written there until `arrived`. */
  joining(room) {
    if (this.arriving.has(room)) return;
    this.arriving.set(room, []);
    // Should the event be lost (a reconnect), the messages go anyway.
    setTimeout(() => this.arrived(room), ARRIVAL_WAIT);
  }

  /** The socket knows of the room now (`room joined`): what waited is sent. */
  arrived(room) {
    const waiting = this.arriving.get(room);
    if (!waiting) return;
    this.arriving.delete(room);
    for (const text of waiting) this.send(room, text);
  }

  /** A room this user is no longer in. */
  forget(room) {
    this.drafts.delete(room);
    this.arriving.delete(room);
  }
}
