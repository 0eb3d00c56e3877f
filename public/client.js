// Lobby's browser client, as native ES modules (no bundler): the course's
// socket.io shape (socket.on, socket.emit) over a plain WebSocket, with
// reconnects that lose no message.
//
//   js/socket.js    the connection: events, reconnects, resuming with ?since=
//   js/messages.js  the conversation: messages, joins and leaves, scrollback, the unread divider
//   js/people.js    who is here
//   js/typing.js    who is typing, and telling others we are
//   js/editing.js   editing and deleting one's own messages (and an admin deleting any)
//   js/push.js      "Notify me": Web Push for this browser (the service worker is /sw.js)
//   js/chat.js      the page: wires the above together

import { startChat } from './js/chat.js';

startChat();
