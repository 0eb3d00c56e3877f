// Lobby's service worker, served at /sw.js so its scope is the whole site.
// It shows the pushes the server sends while no Lobby tab is open (titled
// with the room, the sender and text as the body, one notification per
// room: a newer push replaces the room's last one), and a click opens the
// room (/chat/ID), or focuses a Lobby tab already open and opens the room
// there. It caches nothing: chat needs the network anyway.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

/** `url` if it is on this site, else the chat page: a push opens nothing else. */
function onSite(url) {
  try {
    const resolved = new URL(url, self.location.origin);
    if (resolved.origin === self.location.origin) return resolved.href;
  } catch {
    // not a URL at all
  }
  return new URL('/chat', self.location.origin).href;
}

/** The notification for a push's payload (`{room, roomName, from, text, url, count}`). */
function notice(payload) {
  const count = Number(payload.count) > 1 ? Number(payload.count) : 1;
  const from = String(payload.from || 'Someone');
  const text = String(payload.text || '');
  return {
    title: String(payload.roomName || 'Lobby'),
    options: {
      body: count > 1 ? `${from}: ${text}\n(${count} new messages)` : `${from}: ${text}`,
      tag: `lobby-room-${Number(payload.room) || 0}`,
      renotify: true,
      icon: '/public/icons/icon-192.png',
      badge: '/public/icons/icon-192.png',
      timestamp: Date.now(),
      data: { url: onSite(payload.url) },
    },
  };
}

self.addEventListener('push', (event) => {
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = {};
  }
  const { title, options } = notice(payload && typeof payload === 'object' ? payload : {});
  // Every push shows something: browsers require it of a push subscription.
  event.waitUntil(self.registration.showNotification(title, options));
});

/** Is this tab the chat page (any room)? It then opens a room without a reload. */
function onChat(tab) {
  return /^\/chat(\/\d+)?\/?$/.test(new URL(tab.url).pathname);
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = onSite(event.notification.data && event.notification.data.url);
  event.waitUntil((async () => {
    const tabs = (await self.clients.matchAll({ type: 'window', includeUncontrolled: true }))
      .filter((tab) => new URL(tab.url).origin === self.location.origin);
    // A chat tab first (it switches rooms in place, keeping drafts), else any Lobby tab.
    const open = tabs.find(onChat) || tabs[0];
    if (open) {
      const focused = (await open.focus().catch(() => null)) || open;
      if (focused.url === url) return;
      if (onChat(focused)) {
        focused.postMessage({ type: 'lobby:open', url });
      } else if ('navigate' in focused) {
        await focused.navigate(url).catch(() => null);
      }
      return;
    }
    await self.clients.openWindow(url);
  })());
});

// The push service replaced the subscription: hand the new one to the
// server, for the session it belonged to (the cookie goes with it).
self.addEventListener('pushsubscriptionchange', (event) => {
  const old = event.oldSubscription;
  event.waitUntil((async () => {
    const fresh = event.newSubscription
      || (old && await self.registration.pushManager.subscribe(old.options).catch(() => null));
    if (!fresh) return;
    await fetch('/api/push/subscriptions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(fresh.toJSON()),
    }).catch(() => null);
  })());
});
