// Notifications when no tab is open: Web Push for this browser. The page's
// "Notify me" button (#notify) asks the browser for permission, only ever
// from a click, subscribes this browser at its push service with the
// server's key, and hands the subscription to the server, which keeps it
// for this session. Beside the button a line says where things stand: on,
// off, or blocked by the browser; when on, the button turns them off. The
// service worker (/sw.js) shows what arrives.

const WORKER = '/sw.js';
// How long the browser's push service has to take a subscription.
const SUBSCRIBE_WITHIN_MS = 5000;

const WORDS = {
  on: 'Notifications are on, also when no Lobby tab is open.',
  off: 'Notifications are off.',
  blocked: 'Notifications are blocked by this browser. Allow them in its settings for this site to turn them on.',
  unsupported: 'This browser cannot show notifications when no tab is open.',
};

/** base64url → bytes (what `applicationServerKey` takes everywhere). */
function bytes(base64url) {
  const base64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

async function send(method, body) {
  const res = await fetch('/api/push/subscriptions', {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) {
    const said = await res.json().catch(() => ({}));
    throw new Error(said.error || `The server answered ${res.status}.`);
  }
}

/** Wires the #notify button; registers the service worker (which asks nothing). */
export function notifyMe(button) {
  if (!button) return;
  const supported = 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  const state = document.createElement('span');
  state.id = 'notify-state';
  state.className = 'muted notify-state';
  state.setAttribute('role', 'status');
  button.after(state);
  let busy = false;

  // The worker, registered on load (that asks nothing of the person).
  const registration = supported
    ? navigator.serviceWorker.register(WORKER, { scope: '/' })
      .then(() => navigator.serviceWorker.ready)
      .catch(() => null)
    : null;

  async function subscription() {
    const ready = registration && (await registration);
    return ready ? ready.pushManager.getSubscription() : null;
  }

  async function render(error) {
    let now = 'unsupported';
    if (supported && (await registration)) {
      if (Notification.permission === 'denied') now = 'blocked';
      else if (Notification.permission === 'granted' && (await subscription())) now = 'on';
      else now = 'off';
    }
    button.dataset.state = now;
    button.hidden = now === 'blocked' || now === 'unsupported';
    button.textContent = now === 'on' ? 'Turn off notifications' : 'Notify me';
    button.disabled = busy;
    state.textContent = error ? `${WORDS[now]} ${error}` : WORDS[now];
    state.dataset.state = now;
  }

  async function turnOn() {
    // From the click: the one place permission is asked for.
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') return null;
    const ready = await registration;
    if (!ready) return 'The service worker could not start.';
    const key = await fetch('/api/push/key').then((res) => (res.ok ? res.json() : Promise.reject(new Error('No key.'))));
    let subscribed;
    try {
      // A browser that cannot reach its push service may never answer: say
      // so rather than leave the button waiting.
      subscribed = await Promise.race([
        ready.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key.publicKey) }),
        new Promise((_, reject) => {
          setTimeout(() => reject(new Error('no answer in time')), SUBSCRIBE_WITHIN_MS);
        }),
      ]);
    } catch (e) {
      return `The browser's push service did not take the subscription (${e.message}).`;
    }
    try {
      await send('POST', subscribed.toJSON());
    } catch (e) {
      await subscribed.unsubscribe().catch(() => {});
      return e.message;
    }
    return null;
  }

  async function turnOff() {
    const subscribed = await subscription();
    if (!subscribed) return null;
    try {
      await send('DELETE', { endpoint: subscribed.endpoint });
    } finally {
      await subscribed.unsubscribe().catch(() => {});
    }
    return null;
  }

  button.addEventListener('click', async () => {
    if (busy || !supported) return;
    busy = true;
    await render();
    let error = null;
    try {
      error = button.dataset.state === 'on' ? await turnOff() : await turnOn();
    } catch (e) {
      error = e.message;
    }
    busy = false;
    await render(error);
  });

  render();
  // Allowed or blocked in the browser's own settings: show it at once.
  if (supported && navigator.permissions) {
    navigator.permissions.query({ name: 'notifications' })
      .then((status) => { status.onchange = () => { if (!busy) render(); }; })
      .catch(() => {});
  }
  // A subscription this browser kept from an earlier session (the server
  // forgot it when that session ended) belongs to this one now.
  subscription()
    .then((kept) => (kept && Notification.permission === 'granted' ? send('POST', kept.toJSON()) : null))
    .catch(() => {});
}
