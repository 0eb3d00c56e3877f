// What the page knows of the user's rooms: each room as the server sent it
// (the contract's ROOM), kept by the socket's room events, with this user's
// unread and mention counts moved by every message and read marker. It draws
// nothing: it says what changed through `onChange` (one room's counts or
// fields) and `onReorder` (rooms came, went or were renamed).
//
// Counting: a message counts once, when its id is past the room's `lastId`
// (so history that overlaps what the greeting already counted is not
// counted twice); a marker that moves recounts from the messages shown when
// they reach back far enough, or else asks the server for the room.

export const LOBBY = 1;

const collator = new Intl.Collator(undefined, { sensitivity: 'base' });

/** `room updated` carries these; the rest (level, marker, counts) is ours. */
const OWN_FIELDS = ['name', 'kind', 'topic', 'people', 'members'];

/** How a room is called: its name, or a direct room's other people. */
export function roomLabel(room) {
  if (room.kind === 'direct') return (room.people || []).join(', ') || 'Only you';
  return room.name;
}

/** The room's address: the lobby is /chat. */
export function roomPath(id) {
  return id === LOBBY ? '/chat' : `/chat/${id}`;
}

/** The room an address names (/chat: the lobby), or null. */
export function roomAt(path) {
  if (path === '/chat' || path === '/chat/') return LOBBY;
  const match = /^\/chat\/(\d+)\/?$/.exec(path);
  return match ? Number(match[1]) : null;
}

export class Rooms {
  constructor(me) {
    this.me = me.toLowerCase();
    this.byId = new Map();
    this.onChange = () => {};
    this.onReorder = () => {};
  }

  get(id) {
    return this.byId.get(id);
  }

  /** Whether the user is in `id` (not just able to look into it). */
  isMember(id) {
    return this.byId.get(id)?.member === true;
  }

  /** The whole list, as the greeting (`rooms`) sent it. */
  reset(list) {
    this.byId = new Map(list.map((room) => [room.id, { ...room }]));
    this.onReorder();
  }

  /** A room as the server sees it for this user: `room joined`, or an API answer. */
  add(room) {
    const had = this.byId.get(room.id);
    const kept = had && had.lastId > room.lastId ? { lastId: had.lastId } : {};
    this.byId.set(room.id, { ...room, ...kept });
    if (had && had.member === room.member && roomLabel(had) === roomLabel(room)) this.onChange(room.id);
    else this.onReorder();
  }

  /** `room updated`: the room's own fields; this user's stay as they are. */
  update(fields) {
    const room = this.byId.get(fields.id);
    if (!room) return;
    const label = roomLabel(room);
    for (const key of OWN_FIELDS) {
      if (key in fields) room[key] = fields[key];
    }
    if (fields.lastId > room.lastId) room.lastId = fields.lastId;
    if (roomLabel(room) !== label) this.onReorder();
    else this.onChange(room.id);
  }

  remove(id) {
    if (this.byId.delete(id)) this.onReorder();
  }

  /** Someone joined (+1) or left (-1). */
  membersMoved(id, by) {
    const room = this.byId.get(id);
    if (!room) return;
    room.members = Math.max(0, room.members + by);
    this.onChange(id);
  }

  setLevel(id, level) {
    const room = this.byId.get(id);
    if (!room) return;
    room.level = level;
    this.onChange(id);
  }

  mine(message) {
    return message.username.toLowerCase() === this.me;
  }

  mentionsMe(message) {
    return (message.mentions || []).some((name) => name.toLowerCase() === this.me);
  }

  /** A message, live or from history: counted once. Says whether it was new. */
  message(message) {
    const room = this.byId.get(message.room ?? LOBBY);
    if (!room || message.id <= room.lastId) return false;
    room.lastId = message.id;
    if (this.mine(message)) {
      // Sending moves the sender's marker to the message.
      room.lastRead = message.id;
      room.unread = 0;
      room.mentions = 0;
    } else if (message.id > room.lastRead) {
      room.unread += 1;
      if (this.mentionsMe(message)) room.mentions += 1;
    }
    this.onChange(room.id);
    return true;
  }

  /**
   * The marker moved to `lastRead` (read here, or in another tab).
   * `count(id, lastRead)` recounts from the messages shown, or says null.
   * Returns true when the counts are unknown and should be asked for.
   */
  read(id, lastRead, count) {
    const room = this.byId.get(id);
    if (!room || lastRead <= room.lastRead) return false;
    room.lastRead = lastRead;
    const counted = lastRead >= room.lastId ? { unread: 0, mentions: 0 } : count(id, lastRead);
    if (counted) Object.assign(room, counted);
    this.onChange(id);
    return !counted;
  }

  /** Counts recounted here (a message after the marker was deleted). */
  recounted(id, counted) {
    const room = this.byId.get(id);
    if (!room) return;
    Object.assign(room, counted);
    this.onChange(id);
  }

  /** Counts from the server (GET /api/rooms/ID), if they are not older than ours. */
  counted(answer) {
    const room = this.byId.get(answer.id);
    if (!room || answer.lastRead < room.lastRead) return;
    room.lastRead = answer.lastRead;
    room.unread = answer.unread;
    room.mentions = answer.mentions;
    if (answer.lastId > room.lastId) room.lastId = answer.lastId;
    this.onChange(room.id);
  }

  /** The rooms the user is in, as listed: the lobby, the others by name; then the direct ones. */
  listed() {
    const mine = [...this.byId.values()].filter((room) => room.member);
    const byLabel = (a, b) => collator.compare(roomLabel(a), roomLabel(b)) || a.id - b.id;
    const rooms = mine.filter((room) => room.kind !== 'direct').sort((a, b) => {
      if (a.id === LOBBY || b.id === LOBBY) return a.id === LOBBY ? -1 : 1;
      return byLabel(a, b);
    });
    const directs = mine.filter((room) => room.kind === 'direct').sort(byLabel);
    return { rooms, directs };
  }

  /** The listed rooms' ids, top to bottom (the order keyboard switching follows). */
  order() {
    const { rooms, directs } = this.listed();
    return [...rooms, ...directs].map((room) => room.id);
  }

  /** Whether a room has something unread for this user. */
  isUnread(room) {
    return room.member && room.unread > 0;
  }

  /** What the hidden tab's title counts: unread in rooms at level `all`, plus unread mentions. */
  titleCount() {
    let count = 0;
    for (const room of this.byId.values()) {
      if (!room.member) continue;
      count += room.level === 'all' ? room.unread : room.mentions;
    }
    return count;
  }
}
