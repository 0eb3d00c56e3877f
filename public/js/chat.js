// The chat page: wires the socket to the rooms, their conversations and the
// list beside them, the people here, typing, edits and deletes, read
// markers, the address (/chat/ID, kept with the history API), what is
// unread at a glance, notifications, search, and files shared by the
// attach button, a drop or a paste.

import { LobbySocket } from './socket.js';
import { People } from './people.js';
import { Typing } from './typing.js';
import { MessageActions } from './editing.js';
import { LOBBY, Rooms, roomAt, roomLabel, roomPath } from './rooms.js';
import { RoomList } from './roomlist.js';
import { Conversations } from './conversations.js';
import { RoomHead } from './roomhead.js';
import { Drawer } from './drawer.js';
import { Browse } from './browse.js';
import { Starting } from './start.js';
import { Members } from './members.js';
import { Settings } from './settings.js';
import { api } from './api.js';
import { closeButtons } from './dialogs.js';
import { Notifier } from './notify.js';
import { Glance } from './glance.js';
import { Composer } from './composer.js';
import { Search } from './search.js';
import { Attachments } from './attach.js';

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
  const admin = chat.dataset.admin === 'true';
  const created = new Set((chat.dataset.created || '').split(' ').filter(Boolean).map(Number));
  const byId = (id) => document.getElementById(id);
  const numUsers = byId('num-users');
  const connection = byId('connection');
  const form = byId('send');
  const input = byId('m');
  const sendError = byId('send-error');
  const announcer = byId('announce');
  const socket = new LobbySocket();
  const actions = new MessageActions({
    me,
    admin,
    editWindowMs: Number(chat.dataset.editWindow) * 1000,
    emit: (event, data) => socket.emit(event, data),
    say: (words) => socket.fire('error', { code: 'local', message: words }),
  });
  const rooms = new Rooms(me);
  const conversations = new Conversations({
    frame: chat.querySelector('.log-frame'),
    first: byId('messages'),
    me,
    actions,
    rooms,
    socket,
    onRead: (room, id) => read(room, id),
  });
  const typing = new Typing(byId('typing'), me);
  new Search(me);
  const head = new RoomHead({
    heading: byId('room-title'),
    topic: byId('room-topic'),
    membersCount: byId('members-count'),
    preview: byId('preview'),
    previewWords: byId('preview-words'),
    composer: [form, byId('typing')],
  });
  const roomList = new RoomList({
    rooms,
    roomList: byId('room-list'),
    directList: byId('direct-list'),
    nav: byId('rooms-panel'),
    onOpen: (id, how) => openRoom(id, { push: true, ...how }),
  });
  const drawer = new Drawer({
    chat,
    panel: byId('rooms-panel'),
    toggle: byId('rooms-toggle'),
    close: byId('rooms-close'),
    scrim: byId('rooms-scrim'),
    outside: [document.querySelector('.site-header'), document.querySelector('.skip'),
      chat.querySelector('.conversation'), byId('people-panel')].filter(Boolean),
    focusInside: () => roomList.currentLink(),
  });
  const canManage = (room) => admin || created.has(room.id);
  const people = new People(byId('people'), byId('people-count'), me, {
    hint: byId('people-hint'),
    onMessage: (name) => starting.direct([name], null),
  });
  const starting = new Starting({
    rooms,
    people,
    created,
    joined: joinedHere,
    openRoom: (id) => openRoom(id, { push: true }),
    complain: (words) => socket.fire('error', { code: 'local', message: words }),
  });
  new Browse({ rooms, openRoom: (id) => openRoom(id, { push: true }), joined: joinedHere });
  const members = new Members({ rooms, people, me, canManage });
  const settings = new Settings({ rooms, canManage, gone: (id) => leftRoom(id) });
  const notifier = new Notifier({ button: byId('notify'), status: byId('notify-state'), rooms, openRoom: (id) => openRoom(id, { push: true }) });
  const glance = new Glance({
    rooms,
    title: () => head.title,
    badge: byId('rooms-unread'),
    words: byId('rooms-unread-words'),
  });
  const composer = new Composer({
    form,
    input,
    socket,
    typing,
    sent: (room) => conversations.list(room)?.scrollToBottom(),
    complain: (words) => socket.fire('error', { code: 'offline', message: words }),
  });
  closeButtons(document);
  byId('room-members').addEventListener('click', () => members.open(current));
  byId('room-settings').addEventListener('click', () => settings.open(current));
  byId('join-room').addEventListener('click', async (e) => {
    const id = current;
    e.currentTarget.disabled = true;
    try {
      joinedHere(await api('POST', `/api/rooms/${id}/join`));
      input.focus();
    } catch (refused) {
      socket.fire('error', { code: 'local', message: refused.message });
    } finally {
      byId('join-room').disabled = false;
    }
  });

  /** The room on screen (null until the greeting says which rooms there are). */
  let current = null;
  new Attachments({
    input: byId('attach-file'),
    button: byId('attach'),
    box: input,
    progress: byId('upload-progress'),
    status: byId('upload-status'),
    dropZone: chat.querySelector('.conversation'),
    maxBytes: Number(chat.dataset.maxUpload),
    // The room on screen.
    room: () => current,
    say: (words) => socket.fire('error', { code: 'local', message: words }),
  });
  let errorTimer = null;
  /** Messages for rooms not known yet (a join racing the connect), until the room is fetched. */
  const waiting = new Map();
  /** Rooms whose counts are being asked of the server. */
  const asking = new Set();

  rooms.onChange = (id) => {
    roomList.update(id);
    if (id === current) head.show(rooms.get(id));
    afterCounts();
  };
  rooms.onReorder = () => {
    roomList.render();
    if (current !== null && rooms.get(current)) head.show(rooms.get(current));
    afterCounts();
  };

  function announce(words) {
    announcer.textContent = '';
    setTimeout(() => { announcer.textContent = words; }, 50);
  }

  /** Opens room `id` here: its messages, its place in the list, its address. */
  function openRoom(id, { push = false, replace = false, keyboard = false } = {}) {
    if (!rooms.get(id)) id = LOBBY;
    const room = rooms.get(id);
    const switched = current !== id;
    current = id;
    head.show(room);
    conversations.show(id);
    roomList.setCurrent(id);
    typing.show(id);
    composer.switchTo(id);
    const path = roomPath(id);
    if (location.pathname !== path) {
      if (push) history.pushState({ room: id }, '', path);
      else if (replace) history.replaceState({ room: id }, '', path);
    }
    updateTitle();
    if (drawer.close(false)) byId('room-title').focus();
    if (switched && (keyboard || push) && room) {
      const unread = room.unread > 0 ? `, ${room.unread} unread` : '';
      announce(`${roomLabel(room)}${unread}`);
    }
  }

  /** The room's marker moved (read here, or in another tab). */
  function read(room, lastRead) {
    if (rooms.read(room, lastRead, (id, after) => conversations.count(id, after))) askCounts(room);
  }

  /** The counts of a room whose messages are not all here, from the server. */
  async function askCounts(room) {
    if (asking.has(room)) return;
    asking.add(room);
    try {
      rooms.counted(await api('GET', `/api/rooms/${room}`));
    } catch {
      // Gone, or offline: the next greeting has the counts.
    } finally {
      asking.delete(room);
    }
  }

  /** A room this user is in now: `room joined`, or the API's answer to a join. */
  function joined(room) {
    const wasLooking = rooms.get(room.id) && !rooms.isMember(room.id);
    rooms.add(room);
    // Looked into before joining: what came in between is fetched again.
    if (wasLooking && room.member) conversations.reload(room.id);
  }

  /** The API's answer to a join, a new room or a direct one: the room, opened by the caller. */
  function joinedHere(room) {
    const wasMember = rooms.isMember(room.id);
    joined(room);
    if (!wasMember && room.member) composer.joining(room.id);
  }

  /** A room this user is no longer in (left, removed, archived). */
  function leftRoom(id) {
    const room = rooms.get(id);
    if (!room) return;
    rooms.remove(id);
    letGo(id, room);
  }

  /** What the page held of a room that is gone; from it, if it was open, to the lobby. */
  function letGo(id, room) {
    typing.forget(id);
    composer.forget(id);
    if (current === id) {
      const label = room ? roomLabel(room) : 'that room';
      openRoom(LOBBY, { replace: true });
      conversations.list(LOBBY)?.notice(`You are no longer in ${label}.`);
      announce(`You are no longer in ${label}. Back in the lobby.`);
    }
    conversations.forget(id);
  }

  function afterCounts() {
    glance.update(current);
  }

  function updateTitle() {
    glance.updateTitle();
  }

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
    conversations.list(LOBBY)?.notice(`${data.username} ${data.connected ? 'joined' : 'left'}.`);
  });

  // The greeting's rooms: the whole list, at every connect.
  socket.on('rooms', (list) => {
    const first = current === null;
    const wasIn = current !== null ? rooms.get(current) : null;
    rooms.reset(list);
    for (const id of [...conversations.lists.keys()]) {
      if (!rooms.isMember(id) && id !== current) conversations.forget(id);
    }
    if (first) {
      const wanted = roomAt(location.pathname) ?? Number(chat.dataset.room);
      openRoom(rooms.get(wanted) ? wanted : LOBBY, { replace: true });
      // The lobby's history comes next, whichever room is open.
      conversations.ensure(LOBBY);
    } else if (!rooms.get(current)) {
      letGo(current, wasIn);
    } else {
      head.show(rooms.get(current));
      conversations.retry();
    }
  });

  socket.on('read marker', (marker) => read(marker.room ?? LOBBY, marker.lastRead));

  socket.on('chat history', (items) => {
    for (const item of items) {
      const room = item.room ?? LOBBY;
      if (item.deleted) {
        conversations.list(room)?.remove(item.id);
        deletedIn(room, item.id);
      } else {
        conversations.list(room)?.show(item);
        rooms.message(item);
      }
      socket.seen(item.seq ?? item.id);
    }
    conversations.lobbyHistory();
    conversations.markRead();
    updateTitle();
  });

  socket.on('chat message', (message) => {
    socket.seen(message.id);
    const room = message.room ?? LOBBY;
    if (rooms.get(room)) received(message);
    else unknownRoom(room, message);
  });

  function received(message) {
    const room = message.room ?? LOBBY;
    typing.done(room, message.username);
    conversations.list(room)?.show(message);
    if (rooms.message(message)) notifier.message(message);
    conversations.markRead();
    updateTitle();
  }

  /** A message for a room not known yet: the room is fetched and added, then the message shown. */
  async function unknownRoom(room, message) {
    if (waiting.has(room)) {
      waiting.get(room).push(message);
      return;
    }
    waiting.set(room, [message]);
    try {
      const answer = await api('GET', `/api/rooms/${room}`);
      if (answer.member) joined(answer);
    } catch {
      // Not ours after all (left meanwhile): nothing to show.
    }
    const queued = waiting.get(room) || [];
    waiting.delete(room);
    if (rooms.isMember(room)) queued.forEach(received);
  }

  socket.on('message edited', (change) => {
    conversations.list(change.room ?? LOBBY)?.edit(change);
    socket.seen(change.seq);
  });

  socket.on('message deleted', (change) => {
    const room = change.room ?? LOBBY;
    conversations.list(room)?.remove(change.id);
    socket.seen(change.seq);
    deletedIn(room, change.id);
  });

  /** A deleted message may have been one of the unread. */
  function deletedIn(room, id) {
    const known = rooms.get(room);
    if (!known || !known.member || id <= known.lastRead || known.unread === 0) return;
    const counted = conversations.count(room, known.lastRead);
    if (counted) rooms.recounted(room, counted);
    else askCounts(room);
  }

  socket.on('typing', (data) => typing.heard(data.room ?? LOBBY, data.username));

  socket.on('room joined', (room) => {
    const known = rooms.isMember(room.id);
    joined(room);
    composer.arrived(room.id);
    if (!known) announce(`You are in ${roomLabel(room)} now.`);
  });

  socket.on('room left', (data) => leftRoom(data.room));

  socket.on('room updated', (fields) => rooms.update(fields));

  socket.on('member joined', (data) => {
    rooms.membersMoved(data.room, 1);
    conversations.list(data.room)?.notice(`${data.username} joined the room.`);
    members.changed(data.room);
  });

  socket.on('member left', (data) => {
    rooms.membersMoved(data.room, -1);
    conversations.list(data.room)?.notice(`${data.username} left the room.`);
    members.changed(data.room);
  });

  socket.on('error', (err) => {
    sendError.textContent = err.message;
    sendError.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => { sendError.hidden = true; }, 5000);
  });

  document.addEventListener('visibilitychange', () => {
    conversations.markRead();
    updateTitle();
  });

  // A push notification clicked while this tab was open (the service
  // worker asks, /sw.js): its room, here, without a reload.
  navigator.serviceWorker?.addEventListener('message', (event) => {
    if (event.origin !== location.origin || event.data?.type !== 'lobby:open') return;
    const url = new URL(String(event.data.url), location.origin);
    if (url.origin !== location.origin) return;
    const id = roomAt(url.pathname);
    if (id !== null && rooms.get(id)) openRoom(id, { push: true });
    else location.assign(url.href);
  });

  window.addEventListener('popstate', () => {
    if (current === null) return;
    const id = roomAt(location.pathname);
    openRoom(id !== null && rooms.get(id) ? id : LOBBY, { replace: true });
  });

  // Who is here: beside the conversation when there is room, folded away
  // above it on smaller screens.
  const wide = window.matchMedia('(min-width: 1100px)');
  const panel = byId('people-panel');
  const fit = () => { panel.open = wide.matches; };
  fit();
  wide.addEventListener('change', fit);

  socket.connect();
}
