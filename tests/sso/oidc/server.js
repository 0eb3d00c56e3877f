// The OpenID Connect provider the sign-in tests talk to: oidc-provider (an
// OpenID Certified implementation) on 127.0.0.1, with one client registered
// for Lobby, a few test accounts, a login and consent that a test drives
// over plain HTTP, and admin endpoints to rotate the signing key and to
// make the token endpoint misbehave in the ways the tests must catch.
//
//   node server.js [PORT]      (or PORT=…; 0 or nothing: a free port)
//
// Environment: CLIENT_ID (default "lobby"), CLIENT_SECRET (default
// "lobby-test-secret"), REDIRECT_URIS (comma-separated; the client's exact
// redirect URIs). On stdout, once it listens: "ready ISSUER". It exits when
// its standard input closes, so a test that dies takes it along.
//
// The interaction (its own, not devInteractions, so a test needs no HTML):
//   GET  /interaction/UID          200 {"uid","prompt"}   prompt: "login" | "consent"
//                                  (to a browser, Accept: text/html, a page with
//                                  the form: #username and #sign-in, or #allow;
//                                  #cancel says no)
//   POST /interaction/UID/login    form username=NAME     303 back to the provider
//   POST /interaction/UID/confirm  (consent)              303 back to the provider
//   GET  /interaction/UID/abort    the user says no       303 … error=access_denied
//
// Admin (tests only, on the same port):
//   POST /admin/rotate[?retire=1]  a new signing key, used from now on and
//                                  published first; the old one stays
//                                  published unless retire=1. 200 {"kid"}
//   POST /admin/mode  body: MODE   what the token endpoint does from now on:
//     normal            as the provider means it
//     unpublished-key   the ID token signed by a key never published (its own kid)
//     forged-kid        the ID token signed by an unpublished key under the current kid
//     wrong-nonce | wrong-aud | wrong-iss | expired   that claim changed, signed by the current key
//     unsigned          the ID token with "alg":"none"
//     no-id-token       the token response without an ID token
//     slow              the token endpoint answers after 15 s
//   POST /admin/clients  JSON {"client_id","client_secret","redirect_uris":[…]}
//                        registers (or replaces) a client
//   GET  /admin/stats    200 {"discovery","jwks","token","userinfo"}: requests served

import http from 'node:http';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader, base64url } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);

// The people who can log in here. `sub` differs from the name on purpose:
// Lobby must key identities on `sub`, never on a name.
const accounts = {
  alice: {
    sub: '248289761001',
    preferred_username: 'alice',
    name: 'Alice Liddell',
    email: 'alice@school.example',
    email_verified: true,
    picture: 'https://pictures.school.example/alice.png',
  },
  // No preferred_username: Lobby falls back to the email's local part.
  bob: {
    sub: '248289761002',
    name: 'Bob Builder',
    email: 'bob.builder@school.example',
    email_verified: true,
  },
  // Nothing but a subject.
  carol: { sub: '248289761003' },
};
const bySub = Object.fromEntries(Object.values(accounts).map((a) => [a.sub, a]));

const clients = new Map();
clients.set(process.env.CLIENT_ID ?? 'lobby', {
  client_id: process.env.CLIENT_ID ?? 'lobby',
  client_secret: process.env.CLIENT_SECRET ?? 'lobby-test-secret',
  redirect_uris: (process.env.REDIRECT_URIS ?? 'http://127.0.0.1/auth/oidc/callback')
    .split(',')
    .filter(Boolean),
});

async function newKey() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = `key-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

// The provider's signing keys, newest (the one it signs with) first.
let keys = [await newKey()];
// A key nobody will ever find in the JWKS, for forged tokens.
const rogue = await newKey();
let mode = 'normal';
const stats = { discovery: 0, jwks: 0, token: 0, userinfo: 0 };

// Sessions, codes and grants live in oidc-provider's in-memory adapter, which
// is shared by every Provider in this process, so rebuilding the provider (to
// rotate keys or add a client) loses nothing in flight.
const cookieKeys = [base64url.encode(crypto.getRandomValues(new Uint8Array(32)))];

const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

let provider = build();

function build() {
  const p = new Provider(issuer, {
    clients: [...clients.values()].map((c) => ({
      ...c,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: { keys },
    cookies: { keys: cookieKeys },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'picture'],
      email: ['email', 'email_verified'],
    },
    // PKCE for every client, confidential ones too: a code without its
    // verifier is refused.
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const account = bySub[sub];
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ ...account }) };
    },
  });
  p.use(tamper);
  return p;
}

// Counts requests, and spoils the token endpoint's answer as `mode` says.
async function tamper(ctx, next) {
  if (ctx.path === '/.well-known/openid-configuration') stats.discovery += 1;
  if (ctx.path === '/jwks') stats.jwks += 1;
  if (ctx.path === '/me') stats.userinfo += 1;
  if (ctx.path !== '/token') return next();
  stats.token += 1;
  if (mode === 'slow') await new Promise((r) => setTimeout(r, 15_000));
  await next();
  const idToken = ctx.body?.id_token;
  if (!idToken || mode === 'normal' || mode === 'slow') return;
  const claims = decodeJwt(idToken);
  const { kid } = decodeProtectedHeader(idToken);
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'unpublished-key':
      ctx.body.id_token = await sign(claims, rogue, rogue.kid);
      break;
    case 'forged-kid':
      ctx.body.id_token = await sign(claims, rogue, kid);
      break;
    case 'wrong-nonce':
      ctx.body.id_token = await sign({ ...claims, nonce: 'not-the-nonce-lobby-sent' }, keys[0], kid);
      break;
    case 'wrong-aud':
      ctx.body.id_token = await sign({ ...claims, aud: 'some-other-client' }, keys[0], kid);
      break;
    case 'wrong-iss':
      ctx.body.id_token = await sign({ ...claims, iss: 'http://127.0.0.1:1' }, keys[0], kid);
      break;
    case 'expired':
      ctx.body.id_token = await sign({ ...claims, iat: now - 600, exp: now - 300 }, keys[0], kid);
      break;
    case 'unsigned': {
      const header = base64url.encode(JSON.stringify({ alg: 'none', kid }));
      const payload = base64url.encode(JSON.stringify(claims));
      ctx.body.id_token = `${header}.${payload}.`;
      break;
    }
    case 'no-id-token':
      delete ctx.body.id_token;
      break;
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

async function sign(claims, jwk, kid) {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(jwk);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

// The login or consent page a browser sees (the browser tests click through it).
function page(res, uid, prompt) {
  const form = prompt === 'login'
    ? `<form method="post" action="/interaction/${uid}/login">
         <label for="username">Username</label> <input id="username" name="username" autocomplete="username">
         <button id="sign-in" type="submit">Sign in</button>
       </form>`
    : `<p>Lobby asks to know who you are.</p>
       <form method="post" action="/interaction/${uid}/confirm"><button id="allow" type="submit">Allow</button></form>`;
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>School sign-in</title>
    <link rel="icon" href="data:,"></head>
    <body><main><h1>School sign-in</h1>${form}<a id="cancel" href="/interaction/${uid}/abort">Cancel</a></main></body></html>`);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return reply(res, 400, { error: 'interaction mismatch' });
  const { prompt, params, session } = details;
  if (req.method === 'GET' && !action) {
    if ((req.headers.accept ?? '').includes('text/html')) return page(res, uid, prompt.name);
    return reply(res, 200, { uid, prompt: prompt.name, client_id: params.client_id });
  }
  if (req.method === 'GET' && action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const account = accounts[form.get('username')];
    if (prompt.name !== 'login' || !account) return reply(res, 400, { error: 'no such account' });
    return provider.interactionFinished(req, res, {
      login: { accountId: account.sub },
    }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm') {
    if (prompt.name !== 'consent') return reply(res, 400, { error: 'not a consent prompt' });
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return reply(res, 404, { error: 'no such interaction action' });
}

async function admin(req, res, url) {
  if (req.method === 'POST' && url.pathname === '/admin/rotate') {
    const key = await newKey();
    keys = url.searchParams.get('retire') ? [key] : [key, ...keys];
    provider = build();
    return reply(res, 200, { kid: key.kid });
  }
  if (req.method === 'POST' && url.pathname === '/admin/mode') {
    mode = (await readBody(req)).trim();
    return reply(res, 200, { mode });
  }
  if (req.method === 'POST' && url.pathname === '/admin/clients') {
    const client = JSON.parse(await readBody(req));
    clients.set(client.client_id, client);
    provider = build();
    return reply(res, 200, { client_id: client.client_id });
  }
  if (req.method === 'GET' && url.pathname === '/admin/stats') return reply(res, 200, stats);
  return reply(res, 404, { error: 'no such admin endpoint' });
}

server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  const inter = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  try {
    if (inter) return await interaction(req, res, inter[1], inter[2]);
    if (url.pathname.startsWith('/admin/')) return await admin(req, res, url);
    return provider.callback()(req, res);
  } catch (err) {
    if (!res.headersSent) reply(res, 500, { error: String(err) });
    else res.end();
  }
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
console.log(`ready ${issuer}`);
