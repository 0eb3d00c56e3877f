// A room's members: who they are and who of them is online (asked of the
// server when the dialog opens, and again when someone joins or leaves while
// it is open); a member of a private room adds people; the room's creator
// or an admin removes them from an open or private room.

import { api, namesIn } from './api.js';
import { openDialog, say } from './dialogs.js';
import { LOBBY, roomLabel } from './rooms.js';

export class Members {
  /**
   * @param {object} options
   * @param {import('./rooms.js').Rooms} options.rooms
   * @param {import('./people.js').People} options.people
   * @param {string} options.me
   * @param {(room: object) => boolean} options.canManage the creator or an admin
   */
  constructor({ rooms, people, me, canManage }) {
    this.rooms = rooms;
    this.people = people;
    this.me = me.toLowerCase();
    this.canManage = canManage;
    this.room = null;
    const byId = (id) => document.getElementById(id);
    this.dialog = byId('members-dialog');
    this.heading = byId('members-title');
    this.list = byId('member-list');
    this.status = byId('members-status');
    this.addForm = byId('add-member-form');
    this.addError = byId('add-member-error');
    this.dialog.addEventListener('close', () => { this.room = null; });
    this.addForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.add();
    });
  }

  open(id) {
    const room = this.rooms.get(id);
    if (!room) return;
    this.room = id;
    this.heading.textContent = `Members of ${roomLabel(room)}`;
    this.list.replaceChildren();
    this.addForm.reset();
    say(this.addError, '');
    this.addForm.hidden = !(room.member && room.kind === 'private');
    this.people.suggest(document.getElementById('people-names'));
    openDialog(this.dialog, this.dialog.querySelector('[data-close]'));
    this.refresh();
  }

  /** Someone joined or left `room`: the open dialog follows. */
  changed(room) {
    if (this.room === room) this.refresh();
  }

  async refresh() {
    const id = this.room;
    say(this.status, 'Asking who is in the room…');
    try {
      const { members } = await api('GET', `/api/rooms/${id}/members`);
      if (this.room !== id) return;
      this.list.replaceChildren(...members.map((member) => this.item(id, member)));
      say(this.status, members.length === 1 ? '1 member.' : `${members.length} members.`);
    } catch (refused) {
      say(this.status, refused.message);
    }
  }

  item(id, member) {
    const room = this.rooms.get(id);
    const item = document.createElement('li');
    item.dataset.username = member.username;
    const who = document.createElement('span');
    who.className = member.online ? 'presence online' : 'presence';
    who.textContent = member.username;
    const state = document.createElement('span');
    state.className = 'muted';
    const you = member.username.toLowerCase() === this.me;
    state.textContent = `${you ? ' (you)' : ''} · ${member.online ? 'online' : 'away'}`;
    item.append(who, state);
    const removable = room && id !== LOBBY && room.kind !== 'direct' && this.canManage(room) && !you;
    if (removable) {
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'quiet';
      remove.textContent = 'Remove';
      remove.setAttribute('aria-label', `Remove ${member.username} from ${roomLabel(room)}`);
      remove.addEventListener('click', () => this.remove(id, member.username));
      item.append(remove);
    }
    return item;
  }

  async add() {
    const id = this.room;
    const names = namesIn(this.addForm.elements.username.value);
    if (names.length === 0) {
      say(this.addError, 'Write the name of the person to add.');
      return;
    }
    say(this.addError, '');
    const added = [];
    for (const username of names) {
      try {
        await api('POST', `/api/rooms/${id}/members`, { username });
        added.push(username);
      } catch (refused) {
        say(this.addError, refused.message);
      }
    }
    if (added.length) {
      this.addForm.reset();
      say(this.status, `${added.join(', ')} ${added.length === 1 ? 'is' : 'are'} in the room now.`);
      this.refresh();
    }
  }

  async remove(id, username) {
    try {
      await api('DELETE', `/api/rooms/${id}/members/${encodeURIComponent(username)}`);
      this.refresh();
    } catch (refused) {
      say(this.status, refused.message);
    }
  }
}
