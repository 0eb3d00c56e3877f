// A room's settings: its name and topic (changed by its creator or an
// admin; the lobby keeps its name), this user's notification level in it,
// leaving it, and archiving it (its creator or an admin). The lobby cannot be
// left or archived; a direct conversation has no name, and nobody leaves it.

import { api } from './api.js';
import { openDialog, say } from './dialogs.js';
import { LOBBY, roomLabel } from './rooms.js';

export class Settings {
  /**
   * @param {object} options
   * @param {import('./rooms.js').Rooms} options.rooms
   * @param {(room: object) => boolean} options.canManage the creator or an admin
   * @param {(id: number) => void} options.gone the user left it, or it was archived
   */
  constructor({ rooms, canManage, gone }) {
    this.rooms = rooms;
    this.canManage = canManage;
    this.gone = gone;
    this.room = null;
    const byId = (id) => document.getElementById(id);
    this.dialog = byId('settings-dialog');
    this.heading = byId('settings-title');
    this.editForm = byId('room-edit-form');
    this.nameField = byId('room-name-field');
    this.about = byId('room-about');
    this.levels = byId('room-level-form');
    this.leaveButton = byId('leave-room');
    this.archiveButton = byId('archive-room');
    this.status = byId('settings-status');
    this.error = byId('settings-error');
    this.dialog.addEventListener('close', () => { this.room = null; });
    this.editForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    this.levels.addEventListener('change', () => this.setLevel());
    this.leaveButton.addEventListener('click', () => this.leave());
    this.archiveButton.addEventListener('click', () => this.archive());
  }

  open(id) {
    const room = this.rooms.get(id);
    if (!room) return;
    this.room = id;
    say(this.status, '');
    say(this.error, '');
    this.heading.textContent = `Settings of ${roomLabel(room)}`;
    const manage = this.canManage(room) && room.kind !== 'direct';
    this.editForm.hidden = !manage;
    this.nameField.hidden = id === LOBBY;
    this.editForm.elements.name.value = room.name || '';
    this.editForm.elements.topic.value = room.topic || '';
    this.about.hidden = manage;
    this.about.textContent = room.topic ? `Topic: ${room.topic}` : 'This room has no topic.';
    this.levels.hidden = !room.member;
    for (const choice of this.levels.elements.level) choice.checked = choice.value === room.level;
    const mayLeave = room.member && id !== LOBBY && room.kind !== 'direct';
    this.leaveButton.hidden = !mayLeave;
    this.archiveButton.hidden = !(manage && id !== LOBBY);
    openDialog(this.dialog, this.dialog.querySelector('[data-close]'));
  }

  async save() {
    const id = this.room;
    const room = this.rooms.get(id);
    if (!room) return;
    const fields = this.editForm.elements;
    const change = {};
    if (id !== LOBBY && fields.name.value.trim() !== room.name) change.name = fields.name.value.trim();
    if (fields.topic.value.trim() !== (room.topic || '')) change.topic = fields.topic.value.trim();
    if (Object.keys(change).length === 0) {
      say(this.status, 'Nothing changed.');
      return;
    }
    say(this.error, '');
    try {
      const answer = await api('PATCH', `/api/rooms/${id}`, change);
      this.rooms.update(answer);
      this.heading.textContent = `Settings of ${roomLabel(answer)}`;
      say(this.status, 'Saved.');
    } catch (refused) {
      say(this.error, refused.message);
    }
  }

  async setLevel() {
    const id = this.room;
    const level = this.levels.elements.level.value;
    say(this.error, '');
    try {
      await api('PUT', `/api/rooms/${id}/level`, { level });
      this.rooms.setLevel(id, level);
      say(this.status, 'Saved.');
    } catch (refused) {
      say(this.error, refused.message);
    }
  }

  async leave() {
    const id = this.room;
    try {
      await api('POST', `/api/rooms/${id}/leave`);
      this.dialog.close();
      this.gone(id);
    } catch (refused) {
      say(this.error, refused.message);
    }
  }

  async archive() {
    const id = this.room;
    const room = this.rooms.get(id);
    if (!room) return;
    const sure = window.confirm(`Archive ${roomLabel(room)}? It goes away for all its members; its messages are kept.`);
    if (!sure) return;
    try {
      await api('DELETE', `/api/rooms/${id}`);
      this.dialog.close();
      this.gone(id);
    } catch (refused) {
      say(this.error, refused.message);
    }
  }
}
