// Notifications, by each room's level: every message (all), those that
// mention the person (mentions), or none (nothing). One control, the #notify
// button, turns them on or off; permission is asked only from its click,
// never on load. While a Lobby tab is open (visible or hidden) this page
// shows them, when the tab is hidden; with no tab open, Web Push does
// (push.js and /sw.js), where the browser and the server offer it: the
// server pushes only to people with no socket open anywhere, so nothing is
// shown twice. Beside the button a status line says where things stand: on
// (and whether also with no tab open), off, or blocked by the browser.
// Clicking a notification brings the tab forward, on its room.

import { LOBBY, roomLabel } from './rooms.js';
import { WebPush } from './push.js';

// This browser's choice, kept across visits: "off" once turned off here.
const CHOICE = 'lobby.notifications';

const WORDS = {
  pushed: 'Notifications are on, also when no Lobby tab is open.',
  on: 'Notifications are on while Lobby is open in a tab.',
  off: 'Notifications are off.',
  blocked: 'Notifications are blocked by this browser. Allow them in its settings for this site to turn them on.',
  unsupported: 'This browser cannot show notifications.',
};

function chosenOff() {
  try {
    return localStorage.getItem(CHOICE) === 'off';
  } catch {
    return false;
  }
}

function choose(on) {
  try {
    if (on) localStorage.removeItem(CHOICE);
    else localStorage.setItem(CHOICE, 'off');
  } catch {
    // Storage refused: the choice lasts as long as the page.
  }
}

export class Notifier {
  /**
   * @param {object} options
   * @param {HTMLButtonElement} options.button turns notifications on or off
   * @param {HTMLElement} options.status says where things stand (a live region)
   * @param {import('./rooms.js').Rooms} options.rooms
   * @param {(id: number) => void} options.openRoom
   */
  constructor({ button, status, rooms, openRoom }) {
    this.button = button;
    this.status = status;
    this.rooms = rooms;
    this.openRoom = openRoom;
    this.supported = 'Notification' in window;
    this.off = chosenOff();
    this.push = new WebPush();
    this.pushed = false;
    this.busy = false;
    button.setAttribute('aria-describedby', status.id);
    button.addEventListener('click', () => this.toggle());
    this.render();
    // Allowed or blocked in the browser's own settings: shown at once.
    if (this.supported && navigator.permissions) {
      navigator.permissions.query({ name: 'notifications' })
        .then((permission) => {
          permission.onchange = () => {
            if (!this.busy) this.resume();
          };
        })
        .catch(() => {});
    }
    this.resume();
  }

  /** on, off, blocked or unsupported. */
  get state() {
    if (!this.supported) return 'unsupported';
    if (Notification.permission === 'denied') return 'blocked';
    return Notification.permission === 'granted' && !this.off ? 'on' : 'off';
  }

  render(why) {
    const state = this.state;
    const words = state === 'on' ? WORDS[this.pushed ? 'pushed' : 'on'] : WORDS[state];
    this.button.dataset.state = state;
    this.button.hidden = state === 'blocked' || state === 'unsupported';
    this.button.textContent = state === 'on' ? 'Turn off notifications' : 'Turn on notifications';
    this.button.disabled = this.busy;
    this.status.dataset.state = state;
    this.status.textContent = why ? `${words} ${why}` : words;
  }

  /**
   * On load (and when the browser's permission changes): on here means
   * pushed too, so the subscription this browser kept (from an earlier
   * session, which the server forgot) is handed to this session, or one is
   * made; permission is granted already, so nothing is asked.
   */
  async resume() {
    if (this.state === 'on') {
      const why = await this.push.subscribe();
      this.pushed = why === null;
    } else {
      this.pushed = false;
    }
    this.render();
  }

  /** The click: turns notifications on (asking, if the browser has not been asked) or off. */
  async toggle() {
    if (this.busy || !this.supported) return;
    this.busy = true;
    const wasOn = this.state === 'on';
    this.render();
    let why = null;
    try {
      if (wasOn) {
        this.off = true;
        choose(false);
        this.pushed = false;
        await this.push.unsubscribe();
      } else {
        // From the click: the one place permission is asked for (a browser
        // that has granted it already answers at once, asking nothing).
        await Notification.requestPermission();
        if (Notification.permission === 'granted') {
          this.off = false;
          choose(true);
          why = await this.push.subscribe();
          this.pushed = why === null;
        }
      }
    } catch (e) {
      why = e.message;
    }
    this.busy = false;
    this.render(why);
  }

  /** A new message: a notification, if the tab is hidden, they are on, and the room's level asks for one. */
  message(message) {
    if (this.rooms.mine(message) || !document.hidden) return;
    if (this.state !== 'on') return;
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
