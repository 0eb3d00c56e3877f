// Starting a conversation: making a room (open or private, with people to
// add to a private one), and writing to people directly (from the form, or
// by choosing a name under "Here now"). The server's answer is the room,
// which is added to the list and opened; its refusals are shown in its words.

import { api, namesIn } from './api.js';
import { openDialog, say } from './dialogs.js';

export class Starting {
  /**
   * @param {object} options
   * @param {import('./rooms.js').Rooms} options.rooms
   * @param {import('./people.js').People} options.people
   * @param {Set<number>} options.created the rooms this user made
   * @param {(room: object) => void} options.joined the server's answer: a room this user is in
   * @param {(id: number) => void} options.openRoom
   * @param {(words: string) => void} options.complain shows a problem outside a dialog
   */
  constructor({ rooms, people, created, joined, openRoom, complain }) {
    this.rooms = rooms;
    this.joined = joined;
    this.people = people;
    this.created = created;
    this.openRoom = openRoom;
    this.complain = complain;
    const byId = (id) => document.getElementById(id);

    this.roomDialog = byId('new-room-dialog');
    this.roomForm = byId('new-room-form');
    this.roomError = byId('new-room-error');
    this.peopleField = byId('new-room-people-field');
    byId('new-room').addEventListener('click', () => this.newRoom());
    this.roomForm.addEventListener('change', () => this.showPeopleField());
    this.roomForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.makeRoom();
    });

    this.directDialog = byId('new-direct-dialog');
    this.directForm = byId('new-direct-form');
    this.directError = byId('new-direct-error');
    byId('new-direct').addEventListener('click', () => this.newDirect());
    this.directForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.direct(namesIn(this.directForm.elements.people.value), this.directError);
    });
  }

  newRoom() {
    this.roomForm.reset();
    say(this.roomError, '');
    this.showPeopleField();
    this.people.suggest(document.getElementById('people-names'));
    openDialog(this.roomDialog);
  }

  /** People are added to a private room; anyone joins an open one. */
  showPeopleField() {
    this.peopleField.hidden = this.roomForm.elements.kind.value !== 'private';
  }

  async makeRoom() {
    const fields = this.roomForm.elements;
    const kind = fields.kind.value;
    const body = { name: fields.name.value.trim(), kind };
    const topic = fields.topic.value.trim();
    if (topic) body.topic = topic;
    if (kind === 'private') body.people = namesIn(fields.people.value);
    const submit = this.roomForm.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const room = await api('POST', '/api/rooms', body);
      this.created.add(room.id);
      this.joined(room);
      this.roomDialog.close();
      this.openRoom(room.id);
    } catch (refused) {
      say(this.roomError, refused.message);
    } finally {
      submit.disabled = false;
    }
  }

  newDirect() {
    this.directForm.reset();
    say(this.directError, '');
    this.people.suggest(document.getElementById('people-names'));
    openDialog(this.directDialog);
  }

  /** The direct room with `names` (made, or the one that exists), opened. */
  async direct(names, errors) {
    if (names.length === 0) {
      say(errors, 'Write the name of at least one person.');
      return;
    }
    try {
      const room = await api('POST', '/api/direct', { people: names });
      this.joined(room);
      if (this.directDialog.open) this.directDialog.close();
      this.openRoom(room.id);
    } catch (refused) {
      if (errors) say(errors, refused.message);
      else this.complain(refused.message);
    }
  }
}
