// The JSON API under /api, as the page calls it: one function for every
// call, with a refusal turned into an error that carries the server's own
// words (the contract's `{"error": "…"}`), ready to show to the person.

export class Refused extends Error {
  constructor(status, words) {
    super(words);
    this.status = status;
  }
}

/** `method` `path` with an optional JSON body; the answer's JSON (null for 204). */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new Refused(0, 'The server could not be reached. Try again in a moment.');
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON: the words below say what happened.
  }
  if (!response.ok) {
    throw new Refused(response.status, data?.error || `The server could not do that (${response.status}).`);
  }
  return data;
}

/** Usernames typed into a field: separated by commas or spaces, @ allowed. */
export function namesIn(text) {
  return text.split(/[\s,]+/).map((name) => name.replace(/^@/, '')).filter(Boolean);
}
