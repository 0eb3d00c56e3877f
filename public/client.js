// Lobby's browser client, as native ES modules (no bundler): the course's
// socket.io shape (socket.on, socket.emit) over a plain WebSocket, with
// reconnects that lose no message.
//
//   js/socket.js         the connection: events, reconnects, resuming with ?since=
//   js/api.js            the JSON API under /api, its refusals in the server's words
//   js/rooms.js          what the page knows of the user's rooms: their fields, unread and mention counts
//   js/roomlist.js       the room list beside the conversation, and switching rooms by keyboard
//   js/drawer.js         the room list as a drawer on a phone
//   js/conversations.js  one message list per room, the open one on screen; fetching, read markers
//   js/messages.js       one room's conversation: messages, notices, scrollback, the unread divider
//   js/roomhead.js       the open room's name, topic, members, and whether one can write in it
//   js/composer.js       the send box: writing to the open room, drafts per room
//   js/people.js         who is here (each name starts a direct conversation)
//   js/typing.js         who is typing in each room, and telling others we are
//   js/glance.js         what is unread at a glance: the hidden tab's title, the drawer button's badge
//   js/notify.js         notifications, one control (on, off, blocked): shown while the tab is hidden, by each room's level
//   js/editing.js        editing and deleting one's own messages (and an admin deleting any)
//   js/dialogs.js        the page's modal dialogs: opening, closing, their words
//   js/browse.js         browsing and joining open rooms
//   js/start.js          making a room, and starting a direct conversation
//   js/members.js        a room's members: who, adding and removing
//   js/settings.js       a room's settings: name, topic, level, leave, archive
//   js/push.js           Web Push for this browser, with no tab open: subscribing, unsubscribing (the service worker is /sw.js)
//   js/search.js         the search box, its results, and a result opened in its room
//   js/chat.js           the page: wires the above together

import { startChat } from './js/chat.js';

startChat();
