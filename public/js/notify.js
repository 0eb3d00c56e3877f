// Notifications while the tab is hidden, if the person allowed them (asked
// only when they click the button, never on load), by each room's level:
// every message (all), those that mention them (mentions), or none
// (nothing). Clicking one brings the tab forward, on its room.

import { LOBBY, roomLabel } from './rooms.js';

export class Notifier {
  /**
   * @param {object} options
   * @param {HTMLButtonElement} options.button asks for permission
   * @param {import('./rooms.js').Rooms} options.rooms
   * @param {(id: number) => void} options.openRoom
   */
  constructor({ button, rooms, openRoom }) {
    this.rooms = rooms;
    this.openRoom = openRoom;
    const canAsk = () => 'Notification' in window && Notification.permission === 'default';
    button.hidden = !canAsk();
    button.addEventListener('click', async () => {
      await Notification.requestPermission();
      button.hidden = !canAsk();
    });
  }

  /** A new message: a notification, if the tab is hidden and the room's level asks for one. */
  message(message) {
    if (this.rooms.mine(message) || !document.hidden) return;
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    const room = this.rooms.get(message.room ?? LOBBY);
    if (!room) return;
    const mentioned = this.rooms.mentionsMe(message);
    if (room.level === 'nothing' || (room.level === 'mentions' && !mentioned)) return;
    const where = room.kind === 'direct' ? '' : ` in ${roomLabel(room)}`;
    const title = mentioned ? `${message.username} mentioned you${where}` : `${message.username}${where}`;
    const shown = new Notification(title, { body: message.message.slice(0, 140), tag: `lobby-${message.id}` });
    shown.addEventListener('click', () => {
      window.focus();
      this.openRoom(room.id);
    });
  }
}
