// The room list beside the conversation: the user's rooms (the lobby first),
// then their direct conversations under the other people's names. Each is a
// link to its address (/chat/ID), so it opens in a new tab too; a plain
// click opens it here. The open one has aria-current="page"; unread rooms are
// bold with a dot, and mentions counted in a badge, all said in words to a
// screen reader as well.
//
// Keyboard: ↑ and ↓ move between the links of the list; Alt+↑ and Alt+↓
// anywhere on the page open the previous or next room, and with Shift the
// previous or next one with something unread.

import { LOBBY, roomLabel, roomPath } from './rooms.js';

const SVG = 'http://www.w3.org/2000/svg';

/** A small padlock, drawn inline (the page loads no images but its own). */
function padlock() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('width', '12');
  svg.setAttribute('height', '12');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const body = document.createElementNS(SVG, 'rect');
  for (const [k, v] of Object.entries({ x: 2.5, y: 7, width: 11, height: 8, rx: 1.5, fill: 'currentColor' })) {
    body.setAttribute(k, String(v));
  }
  const shackle = document.createElementNS(SVG, 'path');
  shackle.setAttribute('d', 'M5 7V5a3 3 0 0 1 6 0v2');
  shackle.setAttribute('fill', 'none');
  shackle.setAttribute('stroke', 'currentColor');
  shackle.setAttribute('stroke-width', '1.8');
  svg.append(body, shackle);
  return svg;
}

/** The mark before a room's name: # for the lobby and open rooms, a padlock, or @. */
export function sigil(room) {
  const mark = document.createElement('span');
  mark.className = 'sigil';
  mark.setAttribute('aria-hidden', 'true');
  if (room.kind === 'private') mark.append(padlock());
  else mark.textContent = room.kind === 'direct' ? '@' : '#';
  return mark;
}

export class RoomList {
  /**
   * @param {object} options
   * @param {import('./rooms.js').Rooms} options.rooms
   * @param {HTMLUListElement} options.roomList the rooms' <ul>
   * @param {HTMLUListElement} options.directList the direct conversations' <ul>
   * @param {HTMLElement} options.nav the landmark holding both
   * @param {(id: number, how: {keyboard?: boolean}) => void} options.onOpen
   */
  constructor({ rooms, roomList, directList, nav, onOpen }) {
    this.rooms = rooms;
    this.roomList = roomList;
    this.directList = directList;
    this.nav = nav;
    this.onOpen = onOpen;
    this.links = new Map();
    this.current = null;

    nav.addEventListener('click', (e) => {
      const link = e.target.closest('a[data-room]');
      if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      this.onOpen(Number(link.dataset.room), {});
    });
    nav.addEventListener('keydown', (e) => this.moveFocus(e));
    document.addEventListener('keydown', (e) => {
      if (!e.altKey || e.ctrlKey || e.metaKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
      if (document.querySelector('dialog[open]')) return;
      e.preventDefault();
      this.step(e.key === 'ArrowDown' ? 1 : -1, e.shiftKey);
    });
  }

  /** Every item again (rooms came, went or were renamed). */
  render() {
    const { rooms, directs } = this.rooms.listed();
    this.links.clear();
    this.roomList.replaceChildren(...rooms.map((room) => this.item(room)));
    this.directList.replaceChildren(...directs.map((room) => this.item(room)));
    if (directs.length === 0) {
      const none = document.createElement('li');
      none.className = 'none';
      none.textContent = 'None yet: choose a name under “Here now” to write to them.';
      this.directList.append(none);
    }
    this.setCurrent(this.current);
  }

  item(room) {
    const item = document.createElement('li');
    const link = document.createElement('a');
    link.href = roomPath(room.id);
    link.dataset.room = String(room.id);
    link.className = `room-link ${room.kind}`;
    const name = document.createElement('span');
    name.className = 'room-name';
    name.textContent = roomLabel(room);
    const state = document.createElement('span');
    state.className = 'visually-hidden room-state';
    const dot = document.createElement('span');
    dot.className = 'unread-dot';
    dot.setAttribute('aria-hidden', 'true');
    const mentions = document.createElement('span');
    mentions.className = 'mentions';
    mentions.setAttribute('aria-hidden', 'true');
    link.append(sigil(room), name, state, dot, mentions);
    item.append(link);
    this.links.set(room.id, link);
    this.update(room.id);
    return item;
  }

  /** One room's marks, after its counts or fields changed. */
  update(id) {
    const room = this.rooms.get(id);
    const link = this.links.get(id);
    if (!room || !link) return;
    const unread = this.rooms.isUnread(room);
    link.classList.toggle('unread', unread);
    link.querySelector('.room-name').textContent = roomLabel(room);
    const badge = link.querySelector('.mentions');
    badge.textContent = room.mentions > 0 ? String(room.mentions) : '';
    badge.hidden = room.mentions === 0;
    const words = [];
    if (room.kind === 'private') words.push('private');
    if (room.kind === 'direct') words.push('direct message');
    if (unread) words.push('unread');
    if (room.mentions > 0) words.push(room.mentions === 1 ? '1 mention' : `${room.mentions} mentions`);
    link.querySelector('.room-state').textContent = words.length ? `, ${words.join(', ')}` : '';
  }

  setCurrent(id) {
    this.current = id;
    for (const [room, link] of this.links) {
      if (room === id) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  /** The link of the open room, for focus (the lobby's if none). */
  currentLink() {
    return this.links.get(this.current) || this.links.get(LOBBY) || null;
  }

  /** Opens the room `by` places away in the list (with `unread`: the next one with something unread). */
  step(by, unread) {
    const order = this.rooms.order();
    const count = order.length;
    let at = order.indexOf(this.current);
    if (at === -1) at = by > 0 ? -1 : count;
    for (let tries = 0; tries < count; tries += 1) {
      at = (at + by + count) % count;
      const next = order[at];
      if (next === this.current) return;
      if (unread && !this.rooms.isUnread(this.rooms.get(next))) continue;
      this.onOpen(next, { keyboard: true });
      // Focus in the list follows the open room (unless opening it moved the focus away).
      if (this.nav.contains(document.activeElement)) this.links.get(next)?.focus();
      return;
    }
  }

  /** ↑ ↓ Home End between the links of the list. */
  moveFocus(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const link = e.target.closest?.('a[data-room]');
    if (!link) return;
    const all = [...this.nav.querySelectorAll('a[data-room]')];
    const at = all.indexOf(link);
    let to = null;
    if (e.key === 'ArrowDown') to = all[Math.min(all.length - 1, at + 1)];
    else if (e.key === 'ArrowUp') to = all[Math.max(0, at - 1)];
    else if (e.key === 'Home') to = all[0];
    else if (e.key === 'End') to = all[all.length - 1];
    if (!to) return;
    e.preventDefault();
    to.focus();
  }
}
