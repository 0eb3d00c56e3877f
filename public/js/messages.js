// One room's conversation: messages, joins and leaves, the "new messages"
// divider, and older messages, loaded when the list is scrolled to the top.
// Everything from the network is inserted as text, never as HTML.
//
// Each room has its own <ul>; the one on screen is #messages (the course's
// element), with role="log", which makes it a live region rather than a
// list; its items are therefore role="none": plain lines of the log.

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });

/** How close to the top (px) the list must be scrolled to load older messages. */
const LOAD_AT = 150;
/** How close to the bottom (px) counts as "at the bottom". */
const STICK_AT = 80;

function line(className) {
  const item = document.createElement('li');
  item.setAttribute('role', 'none');
  item.className = className;
  return item;
}

function isToday(date) {
  const now = new Date();
  return date.getFullYear() === now.getFullYear() && date.getMonth() === now.getMonth()
    && date.getDate() === now.getDate();
}

/** The message text, with each mention of an existing user marked. */
function textWithMentions(text, mentions, me) {
  const fragment = document.createDocumentFragment();
  const named = new Set((mentions || []).map((m) => m.toLowerCase()));
  let from = 0;
  for (const match of text.matchAll(/@([A-Za-z0-9_.-]+)/g)) {
    const name = match[1].replace(/[.-]+$/, '');
    if (!named.has(name.toLowerCase())) continue;
    fragment.append(text.slice(from, match.index));
    const mark = document.createElement('mark');
    mark.className = name.toLowerCase() === me ? 'mention mention-me' : 'mention';
    mark.textContent = `@${name}`;
    fragment.append(mark);
    from = match.index + 1 + name.length;
  }
  fragment.append(text.slice(from));
  return fragment;
}

/** Who wrote a message and when: the author, a space, the time. */
export function byline(message) {
  const author = document.createElement('span');
  author.className = 'author';
  author.textContent = message.username;
  const time = document.createElement('time');
  const sent = new Date(message.sentAt);
  if (!Number.isNaN(sent.getTime())) {
    time.dateTime = message.sentAt;
    time.textContent = isToday(sent) ? timeOfDay.format(sent) : dayAndTime.format(sent);
    time.title = fullDate.format(sent);
  }
  const fragment = document.createDocumentFragment();
  fragment.append(author, ' ', time);
  return fragment;
}

export class MessageList {
  /** `actions` (a MessageActions) adds the edit and delete buttons. */
  constructor(list, room, me, actions) {
    this.list = list;
    this.room = room;
    this.me = me.toLowerCase();
    this.actions = actions;
    this.items = new Map();
    this.shown = new Map();
    /** Deleted while a page of older messages was on its way: not shown again. */
    this.gone = new Set();
    this.oldest = null;
    this.newest = 0;
    this.more = true;
    this.loading = false;
    this.divider = null;
    list.addEventListener('scroll', () => {
      if (list.scrollTop < LOAD_AT) this.loadOlder();
    }, { passive: true });
  }

  atBottom() {
    return this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < STICK_AT;
  }

  scrollToBottom() {
    this.list.scrollTop = this.list.scrollHeight;
  }

  /** Adds a live item at the end, following it if the reader was at the bottom. */
  append(item) {
    const follow = this.atBottom();
    this.list.append(item);
    if (follow) this.scrollToBottom();
  }

  /** A message, new or changed (the same id shows once, as it is now). */
  show(message) {
    if (this.gone.has(message.id)) return null;
    const item = this.render(message);
    const existing = this.items.get(message.id);
    if (existing) {
      existing.replaceWith(item);
    } else if (message.id > this.newest) {
      this.append(item);
    } else {
      // Older than the newest shown: in id order among the rest (the list's
      // order is id order).
      const after = this.messages().find((shown) => Number(shown.dataset.id) > message.id);
      this.list.insertBefore(item, after || null);
    }
    this.items.set(message.id, item);
    this.shown.set(message.id, message);
    this.newest = Math.max(this.newest, message.id);
    const empty = this.list.querySelector('.beginning.empty');
    if (empty) {
      empty.classList.remove('empty');
      empty.textContent = 'This is the beginning of the chat.';
    }
    if (this.oldest === null || message.id < this.oldest) this.oldest = message.id;
    return item;
  }

  /** The message items, in the list's (id) order. */
  messages() {
    return [...this.list.querySelectorAll('li.message')];
  }

  /** A message that was deleted (it goes away for everyone). */
  remove(id) {
    this.gone.add(id);
    const item = this.items.get(id);
    if (item) {
      item.remove();
      this.items.delete(id);
      this.shown.delete(id);
    }
  }

  /** Whether the newest message is on screen (scrolled into the list's view). */
  newestOnScreen() {
    const shown = this.list.querySelectorAll('li.message');
    const last = shown[shown.length - 1];
    if (!last || !this.list.isConnected) return false;
    // Measured on screen: offsetTop would count from the page, not the list.
    return last.getBoundingClientRect().bottom <= this.list.getBoundingClientRect().bottom + 2;
  }

  /**
   * What is unread after `lastRead`: messages by others, and those of them
   * that mention this user; or null when the list does not reach back that
   * far (older messages not loaded), so it cannot say.
   */
  unreadAfter(lastRead) {
    const reaches = !this.more || (this.oldest !== null && this.oldest <= lastRead);
    if (!reaches) return null;
    let unread = 0;
    let mentions = 0;
    for (const [id, message] of this.shown) {
      if (id <= lastRead || message.username.toLowerCase() === this.me) continue;
      unread += 1;
      if ((message.mentions || []).some((m) => m.toLowerCase() === this.me)) mentions += 1;
    }
    return { unread, mentions };
  }

  /** A `message edited`: the new text, mentions and time, if it is shown. */
  edit(change) {
    const message = this.shown.get(change.id);
    if (!message) return;
    this.show({ ...message, message: change.message, editedAt: change.editedAt, mentions: change.mentions });
  }

  render(message) {
    const item = line('message');
    const mentionsMe = (message.mentions || []).some((m) => m.toLowerCase() === this.me);
    if (message.username.toLowerCase() === this.me) item.classList.add('mine');
    if (mentionsMe) item.classList.add('mentions-me');
    item.dataset.id = String(message.id);
    item.dataset.author = message.username;

    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.append(byline(message));
    if (message.editedAt) {
      const edited = document.createElement('span');
      edited.className = 'edited';
      edited.textContent = 'edited';
      edited.title = `Edited ${fullDate.format(new Date(message.editedAt))}`;
      meta.append(' ', edited);
    }

    const text = document.createElement('p');
    text.className = 'text';
    text.dir = 'auto';
    text.append(textWithMentions(message.message, message.mentions, this.me));
    item.append(meta, text);
    this.actions?.decorate(item, message);
    return item;
  }

  /** A join or leave line. */
  notice(words) {
    const item = line('notice');
    item.textContent = words;
    this.append(item);
  }

  /**
   * Marks where the unread messages start: before the first message after
   * `lastRead` that someone else wrote. Returns the divider, if one was placed.
   */
  placeDivider(lastRead) {
    this.divider?.remove();
    this.divider = null;
    for (const item of this.messages()) {
      if (Number(item.dataset.id) > lastRead && !item.classList.contains('mine')) {
        const divider = line('divider');
        divider.id = 'new-messages';
        divider.setAttribute('role', 'separator');
        divider.setAttribute('aria-label', 'New messages');
        const words = document.createElement('span');
        words.textContent = 'New messages';
        divider.append(words);
        this.list.insertBefore(divider, item);
        this.divider = divider;
        return divider;
      }
    }
    return null;
  }

  /** Says so at the top, once the first message of the chat is shown. */
  reachedBeginning() {
    this.more = false;
    if (this.list.querySelector('.beginning')) return;
    const item = line(this.items.size ? 'beginning' : 'beginning empty');
    item.textContent = this.items.size ? 'This is the beginning of the chat.' : 'No messages yet. Say hello!';
    this.list.prepend(item);
  }

  /** Loads the page of messages before the oldest shown, keeping the view still. */
  async loadOlder() {
    if (this.loading || !this.more || this.oldest === null) return;
    this.loading = true;
    try {
      const url = `/api/messages?room=${this.room}&before=${this.oldest}&limit=50`;
      const response = await fetch(url, { credentials: 'same-origin' });
      if (!response.ok) return;
      const page = await response.json();
      // What was on screen stays where it was: measure the first message
      // shown, insert above it, and scroll by however far it moved (whether
      // or not the browser's own scroll anchoring already did).
      const first = this.list.querySelector('.message');
      const top = first ? first.getBoundingClientRect().top : 0;
      for (const message of page.messages) {
        if (this.items.has(message.id) || this.gone.has(message.id)) continue;
        const item = this.render(message);
        this.list.insertBefore(item, first);
        this.items.set(message.id, item);
        this.shown.set(message.id, message);
        this.oldest = Math.min(this.oldest, message.id);
      }
      if (first) this.list.scrollTop += first.getBoundingClientRect().top - top;
      if (!page.more) this.reachedBeginning();
    } catch {
      // Offline for a moment: the next scroll tries again.
    } finally {
      this.loading = false;
    }
  }
}
