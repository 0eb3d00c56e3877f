// Editing and deleting messages. Your own messages get an Edit button while
// the edit window is open and a Delete button; an admin gets Delete on
// everyone's. A change is only asked of the server: the list changes when
// the server's `message edited` or `message deleted` comes back, so every
// tab (this one included) shows the same thing in the same order.

export class MessageActions {
  /**
   * @param {object} options
   * @param {string} options.me the logged-in username
   * @param {boolean} options.admin whether they may delete anyone's messages
   * @param {number} options.editWindowMs how long after sending a message may be edited
   * @param {(event: string, data: object) => boolean} options.emit sends to the server; false when offline
   * @param {(words: string) => void} options.say shows a problem to the person
   */
  constructor({ me, admin, editWindowMs, emit, say }) {
    this.me = me.toLowerCase();
    this.admin = admin;
    this.editWindowMs = editWindowMs;
    this.emit = emit;
    this.say = say;
  }

  mayEdit(message) {
    const sent = Date.parse(message.sentAt);
    return message.username.toLowerCase() === this.me && Date.now() - sent < this.editWindowMs;
  }

  mayDelete(message) {
    return this.admin || message.username.toLowerCase() === this.me;
  }

  /** Adds the buttons this person may use to a rendered message item. */
  decorate(item, message) {
    const edit = this.mayEdit(message);
    const remove = this.mayDelete(message);
    if (!edit && !remove) return;
    const actions = document.createElement('div');
    actions.className = 'actions';
    const whose = message.username.toLowerCase() === this.me ? 'your' : `${message.username}’s`;
    if (edit) {
      actions.append(button('Edit', `Edit ${whose} message`, () => this.startEditing(item, message)));
    }
    if (remove) {
      actions.append(button('Delete', `Delete ${whose} message`, () => this.confirmDelete(message)));
    }
    item.append(actions);
  }

  /** Swaps the text for a field holding it: Enter saves, Escape cancels. */
  startEditing(item, message) {
    if (item.querySelector('form.editor')) return;
    if (!this.mayEdit(message)) {
      this.say('The time to edit this message has passed.');
      return;
    }
    const text = item.querySelector('.text');
    const actions = item.querySelector('.actions');
    const form = document.createElement('form');
    form.className = 'editor';
    const field = document.createElement('input');
    field.value = message.message;
    field.maxLength = 1000;
    field.dir = 'auto';
    field.setAttribute('aria-label', 'Edit your message');
    const save = document.createElement('button');
    save.type = 'submit';
    save.textContent = 'Save';
    const cancel = button('Cancel', 'Cancel editing', () => close(true));
    form.append(field, save, cancel);
    text.hidden = true;
    actions.hidden = true;
    text.after(form);
    field.focus();
    field.setSelectionRange(field.value.length, field.value.length);

    const close = (refocus) => {
      form.remove();
      text.hidden = false;
      actions.hidden = false;
      if (refocus) actions.querySelector('button')?.focus();
    };
    field.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        close(true);
      }
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const changed = field.value.trim();
      if (!changed) {
        this.say('A message cannot be empty. To take it back, delete it.');
        return;
      }
      if (changed === message.message) {
        close(true);
        return;
      }
      if (!this.emit('edit message', { id: message.id, message: changed })) {
        this.say('Not connected yet; your edit is still in the box.');
        return;
      }
      close(false);
      document.getElementById('m')?.focus();
    });
  }

  confirmDelete(message) {
    const whose = message.username.toLowerCase() === this.me ? 'your message' : `${message.username}’s message`;
    if (!window.confirm(`Delete ${whose}? It goes away for everyone.`)) return;
    if (!this.emit('delete message', { id: message.id })) {
      this.say('Not connected yet; nothing was deleted.');
    }
  }
}

function button(words, label, action) {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = 'quiet';
  element.textContent = words;
  element.setAttribute('aria-label', label);
  element.addEventListener('click', action);
  return element;
}
