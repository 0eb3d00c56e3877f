// The open room's head: its name (the page's h1), topic and number of
// members; whether the person can write in it (a member) or is looking into
// an open room before joining it; and the page's title, which names it.

import { LOBBY, roomLabel } from './rooms.js';
import { sigil } from './roomlist.js';

export class RoomHead {
  constructor({ heading, topic, membersCount, preview, previewWords, composer }) {
    this.heading = heading;
    this.topic = topic;
    this.membersCount = membersCount;
    this.preview = preview;
    this.previewWords = previewWords;
    this.composer = composer;
    this.title = document.title;
  }

  show(room) {
    if (!room) return;
    const label = roomLabel(room);
    const name = document.createElement('span');
    name.textContent = label;
    this.heading.replaceChildren(sigil(room), name);
    this.topic.textContent = room.topic || '';
    this.topic.hidden = !room.topic;
    this.membersCount.textContent = String(room.members);
    const looking = !room.member;
    this.preview.hidden = !looking;
    if (looking) this.previewWords.textContent = `You are looking into ${label}. Join it to write here.`;
    for (const part of this.composer) part.hidden = looking;
    this.title = room.id === LOBBY ? 'Chat · Lobby' : `${label} · Chat · Lobby`;
  }
}
