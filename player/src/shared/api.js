// The REST API client of the portal and console: path templates exactly as the OpenAPI
// document spells them (`/api/v1/streams/{stream}`; scripts/check-api-paths.mjs checks
// each call against player/openapi.json at build time), bearer tokens kept in
// localStorage and refreshed quietly before they expire or after a 401.
//
// Types: `src/shared/api-types.d.ts` is generated from openapi.json by the build
// (`npm run types`); the JSDoc below names its schemas.
/** @typedef {import('./api-types').components['schemas']} Schemas */

import { signal } from './signal.js';

const SESSION_KEY = 'panocast.session';
/** Refresh this long before the access token expires. */
const REFRESH_EARLY_MS = 30_000;

/** An API error: the RFC 9457 problem the server answered, or a network failure. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function loadSession() {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

/** The signed-in session (`{ access_token, refresh_token, expires_at, user }`) or null. */
export const session = signal(loadSession());

function saveSession(value) {
  if (value) localStorage.setItem(SESSION_KEY, JSON.stringify(value));
  else localStorage.removeItem(SESSION_KEY);
  session.set(value);
}

/** @param {Schemas['TokenPair']} pair */
function fromTokens(pair) {
  return {
    access_token: pair.access_token,
    refresh_token: pair.refresh_token,
    expires_at: Date.now() + pair.expires_in * 1000,
    user: pair.user,
  };
}

let refreshing = null;

/** Exchanges the refresh token once, however many requests ask at the same time. */
function refresh() {
  const current = session.get();
  if (!current) return Promise.resolve(null);
  refreshing ||= (async () => {
    try {
      const pair = await send('POST', '/api/v1/auth/refresh', { body: { refresh_token: current.refresh_token }, auth: false });
      saveSession(fromTokens(pair));
    } catch (e) {
      // A refresh token that no longer works ends the session; a network failure does not.
      if (e instanceof ApiError && e.status > 0) saveSession(null);
    } finally {
      refreshing = null;
    }
    return session.get();
  })();
  return refreshing;
}

async function accessToken() {
  let current = session.get();
  if (current && current.expires_at - Date.now() < REFRESH_EARLY_MS) current = await refresh();
  return current?.access_token ?? null;
}

/** `/api/v1/streams/{stream}` with `{ stream: 'a b' }` → `/api/v1/streams/a%20b`. */
export function fill(template, path = {}) {
  return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(path[name] ?? ''));
}

function withQuery(url, query) {
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s ? `${url}?${s}` : url;
}

async function send(method, template, { path, query, body, auth = true, retried = false } = {}) {
  const headers = {};
  if (auth) {
    const token = await accessToken();
    if (token) headers.authorization = `Bearer ${token}`;
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(withQuery(fill(template, path), query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { title: 'The server cannot be reached.', detail: String(e.message || e) });
  }
  if (response.status === 401 && auth && !retried && session.get()) {
    if (await refresh()) return send(method, template, { path, query, body, auth, retried: true });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) throw new ApiError(response.status, typeof data === 'object' ? data : { title: text });
  return data;
}

/** Calls by method; each takes the OpenAPI path template and `{ path, query, body }`. */
export const api = {
  get: (template, options) => send('GET', template, options),
  post: (template, options) => send('POST', template, options),
  patch: (template, options) => send('PATCH', template, options),
  put: (template, options) => send('PUT', template, options),
  del: (template, options) => send('DELETE', template, options),
};

/** The bearer header for requests made outside [`api`] (tus uploads, downloads). */
export async function authHeader() {
  const token = await accessToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

export async function signIn(username, password) {
  const pair = await api.post('/api/v1/auth/login', { body: { username, password }, auth: false });
  saveSession(fromTokens(pair));
  return session.get();
}

export async function signUp(username, password, email) {
  await api.post('/api/v1/auth/register', { body: { username, password, email: email || null }, auth: false });
  return signIn(username, password);
}

export async function signOut() {
  const current = session.get();
  if (current) {
    try {
      await api.post('/api/v1/auth/logout', { body: { refresh_token: current.refresh_token } });
    } catch {
      // Signed out here whatever the server says.
    }
  }
  saveSession(null);
}

/**
 * Reads a Server-Sent Events endpoint with the bearer header (EventSource cannot send
 * one), calling `onEvent(type, data)` per event and reconnecting with Last-Event-ID.
 * Returns a function that stops it.
 */
export function subscribeEvents(template, { path, onEvent }) {
  let stopped = false;
  let controller = null;
  let lastId = null;
  (async () => {
    let delay = 1000;
    while (!stopped) {
      try {
        controller = new AbortController();
        const headers = { accept: 'text/event-stream', ...(await authHeader()) };
        if (lastId) headers['last-event-id'] = lastId;
        const response = await fetch(fill(template, path), { headers, signal: controller.signal });
        if (response.status === 401) await refresh();
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let type = 'message';
            const data = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
              else if (line.startsWith('id:')) lastId = line.slice(3).trim();
            }
            if (data.length) {
              let parsed = data.join('\n');
              try {
                parsed = JSON.parse(parsed);
              } catch {
                // Plain text data stays a string.
              }
              onEvent(type, parsed);
            }
          }
        }
      } catch {
        if (stopped) return;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  })();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
