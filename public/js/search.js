// Search: the box (`/` or Ctrl+K reaches it from anywhere on the page),
// results newest first with their matches marked, and a result opened in
// its room: the messages around it (`/api/messages?room=ID&around=MSGID`),
// scrolled to and highlighted. Everything from the network is inserted as
// text, never as HTML.

import { MessageList, byline } from './messages.js';

/** What `/api/search` puts before and after each match in a snippet. */
const MARK_START = '\u0002';
const MARK_END = '\u0003';
const PAGE = 20;

/** The snippet with each match in a <mark>. */
function marked(snippet) {
  const fragment = document.createDocumentFragment();
  let rest = snippet;
  while (rest) {
    const start = rest.indexOf(MARK_START);
    if (start < 0) {
      fragment.append(rest);
      break;
    }
    fragment.append(rest.slice(0, start));
    const end = rest.indexOf(MARK_END, start);
    const mark = document.createElement('mark');
    mark.className = 'match';
    mark.textContent = rest.slice(start + 1, end < 0 ? undefined : end);
    fragment.append(mark);
    rest = end < 0 ? '' : rest.slice(end + 1);
  }
  return fragment;
}

/** A JSON answer, or an Error carrying the server's words. */
async function getJson(url) {
  const response = await fetch(url, { credentials: 'same-origin' });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || 'Search is not available right now. Try again in a moment.');
  return body;
}

/** Is the keyboard busy typing somewhere (so `/` is a character, not the shortcut)? */
function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

export class Search {
  constructor(me) {
    const byId = (id) => document.getElementById(id);
    this.me = me;
    this.input = byId('search-q');
    this.panel = byId('search-panel');
    this.title = byId('search-title');
    this.status = byId('search-status');
    this.results = byId('search-results');
    this.moreButton = byId('search-more');
    this.context = byId('search-context');
    this.back = byId('search-back');
    this.query = '';
    this.oldest = null;
    this.more = false;
    /** What the results' status line says, kept while a result is open. */
    this.summary = '';
    this.roomNames = new Map();

    byId('search').addEventListener('submit', (e) => {
      e.preventDefault();
      this.run(this.input.value.trim());
    });
    this.moreButton.addEventListener('click', () => this.page());
    this.back.addEventListener('click', () => this.showResults());
    byId('search-close').addEventListener('click', () => this.hide());
    this.panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') this.hide();
    });
    document.addEventListener('keydown', (e) => {
      const slash = e.key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey && !typing(e.target);
      const ctrlK = (e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k';
      if (!slash && !ctrlK) return;
      e.preventDefault();
      this.input.focus();
      this.input.select();
    });
  }

  /** A new search: the first page of results. */
  async run(query) {
    if (!query) return;
    this.query = query;
    this.oldest = null;
    this.more = false;
    this.summary = '';
    this.results.replaceChildren();
    this.panel.hidden = false;
    this.showResults();
    await this.page();
  }

  /** The next (older) page of the current search. */
  async page() {
    const query = this.query;
    const params = new URLSearchParams({ q: query, limit: String(PAGE) });
    if (this.oldest !== null) params.set('before', String(this.oldest));
    this.moreButton.hidden = true;
    this.status.textContent = 'Searching…';
    try {
      const found = await getJson(`/api/search?${params}`);
      if (query !== this.query) return;
      for (const result of found.results) this.results.append(this.item(result));
      const last = found.results[found.results.length - 1];
      if (last) this.oldest = last.message.id;
      const count = this.results.children.length;
      this.summary = count === 0
        ? `Nothing found for “${query}”.`
        : `${count} ${count === 1 ? 'message' : 'messages'} found for “${query}”${found.more ? ', and older ones' : ''}.`;
      this.status.textContent = this.summary;
      this.more = found.more;
      this.moreButton.hidden = !found.more;
    } catch (err) {
      if (query === this.query) this.status.textContent = err.message;
    }
  }

  /** One result: who, when, and the snippet; a button that opens it. */
  item({ message, snippet }) {
    const item = document.createElement('li');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'result';
    open.dataset.id = String(message.id);
    open.dataset.room = String(message.room);
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.append(byline(message));
    const text = document.createElement('span');
    text.className = 'snippet';
    text.dir = 'auto';
    text.append(marked(snippet));
    open.append(meta, text);
    open.addEventListener('click', () => this.open(message));
    item.append(open);
    return item;
  }

  /** A room's name as its members see it. */
  async roomName(id) {
    if (!this.roomNames.has(id)) {
      const room = await getJson(`/api/rooms/${id}`);
      this.roomNames.set(id, room.name ? `#${room.name}` : (room.people || []).join(', '));
    }
    return this.roomNames.get(id);
  }

  /** Opens a result in its room: the messages around it, it highlighted. */
  async open(message) {
    this.status.textContent = 'Opening…';
    try {
      const [page, name] = await Promise.all([
        getJson(`/api/messages?room=${message.room}&around=${message.id}&limit=50`),
        this.roomName(message.room),
      ]);
      this.context.replaceChildren();
      const list = new MessageList(this.context, message.room, this.me, null);
      list.more = false;
      for (const shown of page.messages) list.show(shown);
      // Lines of the conversation's log there; items of a plain list here.
      for (const line of this.context.children) line.removeAttribute('role');
      this.results.hidden = true;
      this.moreButton.hidden = true;
      this.context.hidden = false;
      this.back.hidden = false;
      this.title.textContent = `In ${name}`;
      this.status.textContent = '';
      const item = list.items.get(message.id);
      if (!item) {
        this.status.textContent = 'That message is no longer there.';
        return;
      }
      item.classList.add('found');
      item.tabIndex = -1;
      item.scrollIntoView({ block: 'center' });
      item.focus({ preventScroll: true });
    } catch (err) {
      this.status.textContent = err.message;
    }
  }

  showResults() {
    this.title.textContent = 'Search results';
    this.context.hidden = true;
    this.context.replaceChildren();
    this.back.hidden = true;
    this.results.hidden = false;
    this.status.textContent = this.summary;
    this.moreButton.hidden = !this.more;
    this.results.querySelector('.result')?.focus();
  }

  hide() {
    this.panel.hidden = true;
    this.input.focus();
  }
}
