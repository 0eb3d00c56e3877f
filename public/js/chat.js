// The chat page: wires the socket to the conversation, the list of who is
// here, typing, edits and deletes, read markers, the title's unread count
// and mention notifications.

import { LobbySocket } from './socket.js';
import { MessageList } from './messages.js';
import { People } from './people.js';
import { Typing } from './typing.js';
import { MessageActions } from './editing.js';
import { notifyMe } from './push.js';

const STATE_WORDS = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

export function startChat() {
  const chat = document.querySelector('.chat');
  if (!chat) return;
  const me = chat.dataset.username;
  const byId = (id) => document.getElementById(id);
  const numUsers = byId('num-users');
  const connection = byId('connection');
  const form = byId('send');
  const input = byId('m');
  const sendError = byId('send-error');
  const socket = new LobbySocket();
  const actions = new MessageActions({
    me,
    admin: chat.dataset.admin === 'true',
    editWindowMs: Number(chat.dataset.editWindow) * 1000,
    emit: (event, data) => socket.emit(event, data),
    say: (words) => socket.fire('error', { code: 'local', message: words }),
  });
  const messages = new MessageList(byId('messages'), me, actions);
  const people = new People(byId('people'), byId('people-count'), me);
  const typing = new Typing(byId('typing'), me);
  const title = document.title;
  let lastRead = 0;
  let readSent = 0;
  let firstHistory = true;
  let errorTimer = null;

  socket.on('state', (state) => {
    connection.dataset.state = state;
    connection.textContent = STATE_WORDS[state] || state;
  });

  socket.on('user count', (count) => {
    numUsers.textContent = `${count} ${count === 1 ? 'user' : 'users'} online`;
  });

  socket.on('online users', (names) => people.reset(names));

  socket.on('user', (data) => {
    if (data.connected) people.join(data.username);
    else people.leave(data.username);
    messages.notice(`${data.username} ${data.connected ? 'joined' : 'left'}.`);
  });

  socket.on('read marker', (marker) => {
    lastRead = Math.max(lastRead, marker.lastRead);
    updateTitle();
  });

  socket.on('chat history', (list) => {
    for (const message of list) {
      if (message.deleted) messages.remove(message.id);
      else messages.show(message);
      socket.seen(message.seq ?? message.id);
    }
    if (firstHistory) {
      firstHistory = false;
      // A reader who never read anything gets no divider: it would sit above everything.
      const divider = lastRead > 0 ? messages.placeDivider(lastRead) : null;
      if (divider) divider.scrollIntoView({ block: 'center' });
      else messages.scrollToBottom();
      if (messages.items.size === 0) messages.reachedBeginning();
      else if (messages.list.scrollHeight <= messages.list.clientHeight) messages.loadOlder();
    }
    markRead();
    updateTitle();
  });

  socket.on('chat message', (message) => {
    typing.done(message.username);
    messages.show(message);
    socket.seen(message.id);
    notifyIfMentioned(message);
    markRead();
    updateTitle();
  });

  socket.on('message edited', (change) => {
    messages.edit(change);
    socket.seen(change.seq);
  });

  socket.on('message deleted', (change) => {
    messages.remove(change.id);
    socket.seen(change.seq);
    updateTitle();
  });

  socket.on('typing', (data) => typing.heard(data.username));

  socket.on('error', (err) => {
    sendError.textContent = err.message;
    sendError.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => { sendError.hidden = true; }, 5000);
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (socket.emit('chat message', text)) {
      input.value = '';
      messages.scrollToBottom();
    } else {
      socket.fire('error', { code: 'offline', message: 'Not connected yet; your message is still in the box.' });
    }
    input.focus();
  });

  input.addEventListener('input', () => {
    if (input.value.trim()) typing.typed(socket);
  });

  // Read: the newest message has been on screen in a visible tab.
  function newestOnScreen() {
    const list = messages.list;
    const shown = list.querySelectorAll('li.message');
    const last = shown[shown.length - 1];
    if (!last) return false;
    return last.offsetTop + last.offsetHeight <= list.scrollTop + list.clientHeight + 2;
  }

  function markRead() {
    if (document.hidden || messages.newest <= readSent || !newestOnScreen()) return;
    if (socket.emit('read', messages.newest)) {
      readSent = messages.newest;
      lastRead = Math.max(lastRead, readSent);
    }
  }

  /** While the tab is hidden, its title counts what is unread. */
  function updateTitle() {
    let unread = 0;
    if (document.hidden) {
      for (const item of messages.list.querySelectorAll('li.message:not(.mine)')) {
        if (Number(item.dataset.id) > lastRead) unread += 1;
      }
    }
    document.title = unread ? `(${unread}) ${title}` : title;
  }

  document.addEventListener('visibilitychange', () => {
    markRead();
    updateTitle();
  });
  messages.list.addEventListener('scroll', markRead, { passive: true });

  // Mentions: a browser notification while the tab is hidden, and Web Push
  // while no tab is open, if the person allowed them (asked only when they
  // click "Notify me", never on load: push.js).
  notifyMe(byId('notify'));

  function notifyIfMentioned(message) {
    const mine = me.toLowerCase();
    if (message.username.toLowerCase() === mine || !document.hidden) return;
    if (!(message.mentions || []).some((name) => name.toLowerCase() === mine)) return;
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    new Notification(`${message.username} mentioned you`, { body: message.message.slice(0, 140), tag: `lobby-${message.id}` });
  }

  // Who is here: beside the conversation when there is room, folded away
  // above it on a phone.
  const wide = window.matchMedia('(min-width: 760px)');
  const panel = byId('people-panel');
  const fit = () => { panel.open = wide.matches; };
  fit();
  wide.addEventListener('change', fit);

  socket.connect();
}
