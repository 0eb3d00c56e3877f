// The conversations: one message list per room, the open one on screen as
// #messages. A room's messages are fetched (/api/messages?room=ID) when it
// is first opened (the lobby's come with the socket's greeting), then kept
// by the socket while the page lives, so switching back is instant; the
// lists of the least recently opened rooms are let go past KEEP.
//
// Read: when the newest message of the open room has been on screen in a
// visible tab, `read` goes to the server for it (every tab of the user hears).

import { MessageList } from './messages.js';
import { LOBBY, roomLabel } from './rooms.js';

/** Lists kept besides the open one. */
const KEEP = 12;

export class Conversations {
  /**
   * @param {object} options
   * @param {HTMLElement} options.frame where the open room's list goes
   * @param {HTMLUListElement} options.first the page's own #messages, for the first room opened
   * @param {string} options.me
   * @param {import('./editing.js').MessageActions} options.actions
   * @param {import('./rooms.js').Rooms} options.rooms
   * @param {import('./socket.js').LobbySocket} options.socket
   * @param {(room: number, id: number) => void} options.onRead the open room was read up to `id`
   */
  constructor({ frame, first, me, actions, rooms, socket, onRead }) {
    this.frame = frame;
    this.first = first;
    this.me = me;
    this.actions = actions;
    this.rooms = rooms;
    this.socket = socket;
    this.onRead = onRead;
    this.lists = new Map();
    this.open = null;
  }

  /** The list of `room`, if the page holds one. */
  list(room) {
    return this.lists.get(room) || null;
  }

  /** The list of `room`, made (empty, not on screen) if there is none. */
  ensure(room) {
    const existing = this.lists.get(room);
    if (existing) return existing;
    let element = this.first;
    this.first = null;
    if (!element) {
      element = document.createElement('ul');
      element.setAttribute('role', 'log');
      element.setAttribute('aria-live', 'polite');
      element.setAttribute('aria-relevant', 'additions');
      element.tabIndex = 0;
    }
    element.replaceChildren();
    const list = new MessageList(element, room, this.me, this.actions);
    list.loaded = false;
    list.settled = false;
    element.addEventListener('scroll', () => {
      if (this.open === room) this.markRead();
    }, { passive: true });
    this.lists.set(room, list);
    return list;
  }

  /** Puts `room` on screen; its messages come from the server the first time. */
  show(room) {
    const before = this.lists.get(this.open);
    if (before && this.open !== room) {
      before.savedTop = before.list.scrollTop;
      before.wasAtBottom = before.atBottom();
      before.list.removeAttribute('id');
      before.list.remove();
      // A room looked into without joining gets nothing live: fetched again next time.
      if (!this.rooms.isMember(this.open)) this.lists.delete(this.open);
    }
    this.open = room;
    const list = this.ensure(room);
    // The most recently opened last, so the oldest are let go first.
    this.lists.delete(room);
    this.lists.set(room, list);
    this.letGo();
    const label = this.rooms.get(room) ? roomLabel(this.rooms.get(room)) : 'this room';
    list.list.setAttribute('aria-label', `Messages in ${label}`);
    list.list.id = 'messages';
    if (!list.list.isConnected) this.frame.append(list.list);
    if (list.settled) this.returnTo(list);
    else if (list.loaded) this.settle(list);
    else this.load(room);
  }

  letGo() {
    for (const room of this.lists.keys()) {
      if (this.lists.size <= KEEP + 1) return;
      if (room !== this.open) this.lists.delete(room);
    }
  }

  /** A room this user is no longer in. */
  forget(room) {
    const list = this.lists.get(room);
    if (list && room !== this.open) this.lists.delete(room);
  }

  /** The open room's messages again from the server (it was joined after being looked into). */
  reload(room) {
    const list = this.lists.get(room);
    if (!list) return;
    list.list.remove();
    this.lists.delete(room);
    if (this.open === room) {
      this.open = null;
      this.show(room);
    }
  }

  /** The newest page of a room's messages, from the server. */
  async load(room) {
    const list = this.ensure(room);
    if (list.loading || list.loaded) return;
    // The lobby's first page is the socket's `chat history`, unless the list was let go since.
    if (room === LOBBY && !this.lobbyFromSocket) return;
    list.loading = true;
    try {
      const response = await fetch(`/api/messages?room=${room}&limit=50`, { credentials: 'same-origin' });
      if (!response.ok) {
        list.failed = true;
        return;
      }
      const page = await response.json();
      for (const message of page.messages) list.show(message);
      if (!page.more) list.reachedBeginning();
      list.loaded = true;
      list.failed = false;
      if (this.open === room && this.lists.get(room) === list) this.settle(list);
    } catch {
      list.failed = true;
    } finally {
      list.loading = false;
    }
  }

  /** The lobby's history from the socket's greeting has come. */
  lobbyHistory() {
    this.lobbyFromSocket = true;
    const list = this.lists.get(LOBBY);
    if (!list || list.loaded) return;
    list.loaded = true;
    if (this.open === LOBBY) this.settle(list);
  }

  /** Retries what failed to load (after a reconnect). */
  retry() {
    const list = this.lists.get(this.open);
    if (list && list.failed && !list.loading) {
      list.failed = false;
      this.load(this.open);
    }
  }

  /**
   * The first time a list is on screen with its messages: the divider
   * before the first unread (a reader who never read anything gets none: it
   * would sit above everything), scrolled to it or to the bottom, then older
   * messages if the screen is not full, and the read marker.
   */
  settle(list) {
    list.settled = true;
    const room = this.rooms.get(list.room);
    const lastRead = room ? room.lastRead : 0;
    const divider = lastRead > 0 ? list.placeDivider(lastRead) : null;
    if (divider) divider.scrollIntoView({ block: 'center' });
    else list.scrollToBottom();
    if (list.items.size === 0) list.reachedBeginning();
    else if (list.more && list.list.scrollHeight <= list.list.clientHeight) list.loadOlder();
    this.markRead();
  }

  /** Back to a list shown before: where the reader left it, or at what came since. */
  returnTo(list) {
    const room = this.rooms.get(list.room);
    const divider = room && room.unread > 0 && room.lastRead > 0 ? list.placeDivider(room.lastRead) : null;
    if (divider) divider.scrollIntoView({ block: 'center' });
    else if (list.wasAtBottom !== false) list.scrollToBottom();
    else list.list.scrollTop = list.savedTop;
    this.markRead();
  }

  /** Sends `read` for the open room's newest message once it is on screen. */
  markRead() {
    const room = this.rooms.get(this.open);
    const list = this.lists.get(this.open);
    if (!room?.member || !list?.settled || document.hidden) return;
    if (list.newest <= room.lastRead || !list.newestOnScreen()) return;
    if (this.socket.emit('read', list.newest)) this.onRead(this.open, list.newest);
  }

  /** Unread counts after `lastRead` from a room's list, or null if it cannot say. */
  count(room, lastRead) {
    const list = this.lists.get(room);
    return list && list.loaded ? list.unreadAfter(lastRead) : null;
  }
}
