// Browsing the open rooms this user is not in: asked of the server each time
// (GET /api/rooms: a room made a moment ago by someone else is there), with
// a field to narrow them by name or topic. Each can be looked into first
// (its messages can be read before joining) or joined at once.

import { api } from './api.js';
import { openDialog, say } from './dialogs.js';

const collator = new Intl.Collator(undefined, { sensitivity: 'base' });

export class Browse {
  /**
   * @param {object} options
   * @param {import('./rooms.js').Rooms} options.rooms
   * @param {(id: number) => void} options.openRoom
   * @param {(room: object) => void} options.joined the server's answer to a join
   */
  constructor({ rooms, openRoom, joined }) {
    this.rooms = rooms;
    this.openRoom = openRoom;
    this.joined = joined;
    const byId = (id) => document.getElementById(id);
    this.dialog = byId('browse-dialog');
    this.filter = byId('browse-filter');
    this.list = byId('browse-list');
    this.status = byId('browse-status');
    this.found = [];
    byId('browse-rooms').addEventListener('click', () => this.open());
    this.filter.addEventListener('input', () => this.render());
  }

  async open() {
    this.filter.value = '';
    this.list.replaceChildren();
    say(this.status, 'Looking for open rooms…');
    openDialog(this.dialog, this.filter);
    try {
      const { rooms } = await api('GET', '/api/rooms');
      this.found = rooms.filter((room) => !room.member && room.kind === 'open')
        .sort((a, b) => collator.compare(a.name, b.name));
      this.render();
    } catch (refused) {
      say(this.status, refused.message);
    }
  }

  render() {
    const words = this.filter.value.trim().toLowerCase();
    const shown = this.found.filter((room) => !words
      || room.name.toLowerCase().includes(words) || room.topic.toLowerCase().includes(words));
    this.list.replaceChildren(...shown.map((room) => this.item(room)));
    let status;
    if (this.found.length === 0) status = 'You are in every open room. Make a new one!';
    else if (shown.length === 0) status = 'No open room matches.';
    else status = shown.length === 1 ? '1 open room.' : `${shown.length} open rooms.`;
    say(this.status, status);
  }

  item(room) {
    const item = document.createElement('li');
    item.dataset.room = String(room.id);
    const about = document.createElement('div');
    about.className = 'about';
    const name = document.createElement('strong');
    name.textContent = `#${room.name}`;
    const members = document.createElement('span');
    members.className = 'muted';
    members.textContent = room.members === 1 ? ' · 1 member' : ` · ${room.members} members`;
    about.append(name, members);
    if (room.topic) {
      const topic = document.createElement('p');
      topic.className = 'topic';
      topic.textContent = room.topic;
      about.append(topic);
    }
    const look = document.createElement('button');
    look.type = 'button';
    look.className = 'quiet';
    look.textContent = 'Look in';
    look.setAttribute('aria-label', `Look into ${room.name}`);
    look.addEventListener('click', () => {
      this.rooms.add(room);
      this.dialog.close();
      this.openRoom(room.id);
    });
    const join = document.createElement('button');
    join.type = 'button';
    join.className = 'quiet';
    join.textContent = 'Join';
    join.setAttribute('aria-label', `Join ${room.name}`);
    join.addEventListener('click', () => this.join(room, join));
    const actions = document.createElement('div');
    actions.className = 'row-actions';
    actions.append(look, join);
    item.append(about, actions);
    return item;
  }

  async join(room, button) {
    button.disabled = true;
    try {
      const joined = await api('POST', `/api/rooms/${room.id}/join`);
      this.joined(joined);
      this.dialog.close();
      this.openRoom(joined.id);
    } catch (refused) {
      say(this.status, refused.message);
      button.disabled = false;
    }
  }
}
