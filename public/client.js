// Lobby's browser client: the course's socket.io shape (socket.on, socket.emit)
// over a native WebSocket, with reconnects that lose no message.
'use strict';

/**
 * A socket.io-like connection to /ws. Frames are {"event": name, "data": value}.
 * It reconnects with exponential backoff and jitter, resuming after the last
 * message shown (?since=ID); a 4401 close (session ended) sends the page home.
 */
class LobbySocket {
  constructor() {
    this.handlers = new Map();
    this.lastMessageId = 0;
    this.attempt = 0;
    this.ws = null;
    this.connect();
  }

  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(handler);
    return this;
  }

  emit(event, data) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ event, data }));
    return true;
  }

  fire(event, data) {
    for (const handler of this.handlers.get(event) || []) handler(data);
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const since = this.lastMessageId > 0 ? `?since=${this.lastMessageId}` : '';
    return `${scheme}//${location.host}/ws${since}`;
  }

  connect() {
    this.fire('state', this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.attempt = 0;
      this.fire('state', 'open');
    });
    ws.addEventListener('message', (e) => {
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      this.fire(frame.event, frame.data);
    });
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return;
      if (e.code === 4401) {
        this.fire('state', 'closed');
        location.assign('/');
        return;
      }
      this.fire('state', 'reconnecting');
      // 0.5 s, 1 s, 2 s … up to 30 s, each somewhere in [50%, 100%] of that.
      const ceiling = Math.min(30000, 500 * 2 ** this.attempt);
      const delay = ceiling / 2 + Math.random() * (ceiling / 2);
      this.attempt += 1;
      setTimeout(() => this.connect(), delay);
    });
  }

  /** Called for each message shown, so a reconnect resumes after it. */
  seen(id) {
    if (id > this.lastMessageId) this.lastMessageId = id;
  }
}

function startChat() {
  const chat = document.querySelector('.chat');
  if (!chat) return;
  const numUsers = document.getElementById('num-users');
  const messages = document.getElementById('messages');
  const form = document.getElementById('send');
  const input = document.getElementById('m');
  const connection = document.getElementById('connection');
  const sendError = document.getElementById('send-error');
  const socket = new LobbySocket();
  let errorTimer = null;

  const stateText = {
    connecting: 'Connecting…',
    open: 'Connected',
    reconnecting: 'Reconnecting…',
    closed: 'Disconnected',
  };
  socket.on('state', (state) => {
    connection.dataset.state = state;
    connection.textContent = stateText[state] || state;
  });

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

  // Everything from the network is inserted as text, never as HTML.
  function append(item) {
    const nearBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
    messages.appendChild(item);
    if (nearBottom) messages.scrollTop = messages.scrollHeight;
  }

  function showMessage(msg) {
    if (msg.id <= socket.lastMessageId) return; // already shown
    socket.seen(msg.id);
    const item = document.createElement('li');
    item.className = 'message';
    item.dataset.id = String(msg.id);
    const author = document.createElement('span');
    author.className = 'author';
    author.textContent = msg.username;
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = msg.message;
    const time = document.createElement('time');
    time.dateTime = msg.sentAt;
    const sent = new Date(msg.sentAt);
    time.textContent = Number.isNaN(sent.getTime()) ? '' : timeFormat.format(sent);
    item.append(author, text, time);
    append(item);
  }

  function showNotice(text) {
    const item = document.createElement('li');
    item.className = 'notice';
    item.textContent = text;
    append(item);
  }

  socket.on('user count', (count) => {
    numUsers.textContent = `${count} ${count === 1 ? 'user' : 'users'} online`;
  });

  socket.on('user', (data) => {
    showNotice(`${data.username} ${data.connected ? 'joined' : 'left'}.`);
  });

  socket.on('chat history', (list) => list.forEach(showMessage));
  socket.on('chat message', showMessage);

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
    } else {
      socket.fire('error', { code: 'offline', message: 'Not connected yet; your message is still in the box.' });
    }
    input.focus();
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', startChat);
} else {
  startChat();
}
