// Web Push for this browser: notifications when no Lobby tab is open. The
// service worker (/sw.js) is registered on load (that asks nothing of the
// person) and shows what arrives; notify.js decides when to subscribe (when
// notifications are turned on) and unsubscribe (turned off). A subscription
// is made with the server's key (/api/push/key; push is offered only when it
// answers) and handed to the server, which keeps it for this session.

const WORKER = '/sw.js';
// How long the browser's push service has to take a subscription.
const SUBSCRIBE_WITHIN_MS = 5000;

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

export class WebPush {
  constructor() {
    this.supported = 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
    // The worker, registered on load; null where it cannot run.
    this.ready = this.supported
      ? navigator.serviceWorker.register(WORKER, { scope: '/' })
        .then(() => navigator.serviceWorker.ready)
        .catch(() => null)
      : Promise.resolve(null);
    this.key = null;
  }

  /** The server's public key, or null when push is not offered here. */
  async serverKey() {
    if (this.key) return this.key;
    const res = await fetch('/api/push/key').catch(() => null);
    if (!res || !res.ok) return null;
    const said = await res.json().catch(() => ({}));
    this.key = typeof said.publicKey === 'string' ? said.publicKey : null;
    return this.key;
  }

  /** This browser's subscription, if it has one. */
  async subscription() {
    const ready = await this.ready;
    return ready ? ready.pushManager.getSubscription().catch(() => null) : null;
  }

  /**
   * Subscribes (permission must be granted already) and tells the server;
   * a subscription this browser kept from an earlier session is handed to
   * this one. Resolves to null when push is on, else to why not, in words.
   */
  async subscribe() {
    if (!this.supported) return 'This browser cannot receive notifications with no tab open.';
    const ready = await this.ready;
    if (!ready) return 'The service worker could not start.';
    const key = await this.serverKey();
    if (!key) return 'This server does not send notifications when no tab is open.';
    let subscribed = await this.subscription();
    if (!subscribed) {
      try {
        // A browser that cannot reach its push service may never answer:
        // say so rather than leave the button waiting.
        subscribed = await Promise.race([
          ready.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key) }),
          new Promise((_, reject) => {
            setTimeout(() => reject(new Error('no answer in time')), SUBSCRIBE_WITHIN_MS);
          }),
        ]);
      } catch (e) {
        return `The browser's push service did not take the subscription (${e.message}).`;
      }
    }
    try {
      await send('POST', subscribed.toJSON());
    } catch (e) {
      await subscribed.unsubscribe().catch(() => {});
      return e.message;
    }
    return null;
  }

  /** Unsubscribes this browser, at the server and at its push service. */
  async unsubscribe() {
    const subscribed = await this.subscription();
    if (!subscribed) return;
    try {
      await send('DELETE', { endpoint: subscribed.endpoint });
    } finally {
      await subscribed.unsubscribe().catch(() => {});
    }
  }
}
