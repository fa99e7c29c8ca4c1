// api.js: the console's only way to talk to berthd. Same /api/v1 as the CLI; the session is
// an HttpOnly cookie (JS never sees it), and every non-GET request carries the CSRF token
// from the session JSON in X-CSRF-Token.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let csrfToken = '';
let onUnauthenticated = () => {};

export function setCsrf(token) { csrfToken = token || ''; }
export function setUnauthenticatedHandler(fn) { onUnauthenticated = fn; }

// request('GET', '/api/v1/services') → parsed JSON (or text for non-JSON answers).
// Throws ApiError with berth's own message on any non-2xx answer.
export async function request(method, path, body, {raw = false, quiet401 = false} = {}) {
  const opts = {method, credentials: 'same-origin', headers: {Accept: 'application/json'}};
  if (method !== 'GET' && method !== 'HEAD') opts.headers['X-CSRF-Token'] = csrfToken;
  if (body !== undefined) {
    if (typeof body === 'string') {
      opts.body = body;
      opts.headers['Content-Type'] = 'text/plain';
    } else {
      opts.body = JSON.stringify(body);
      opts.headers['Content-Type'] = 'application/json';
    }
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'unavailable', 'berthd did not answer: ' + e.message);
  }
  const type = res.headers.get('Content-Type') || '';
  if (!res.ok) {
    let code = 'error';
    let message = `${res.status} ${res.statusText}`;
    if (type.includes('json')) {
      try {
        const j = await res.json();
        if (j && j.error) {
          code = j.error.code || code;
          message = j.error.message || message;
        }
      } catch { /* keep the status line */ }
    } else {
      const t = (await res.text()).trim();
      if (t) message = t;
    }
    if (res.status === 401 && !quiet401) onUnauthenticated();
    throw new ApiError(res.status, code, message);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  if (type.includes('json')) return res.json();
  return res.text();
}

export const get = (p, o) => request('GET', p, undefined, o);
export const post = (p, b, o) => request('POST', p, b === undefined ? {} : b, o);
export const put = (p, b) => request('PUT', p, b);
export const patch = (p, b) => request('PATCH', p, b);
export const del = (p) => request('DELETE', p);

// Path segments are encoded one by one, so repository names keep their slashes.
export function enc(name) {
  return String(name).split('/').map(encodeURIComponent).join('/');
}

export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
  }
  return parts.length ? '?' + parts.join('&') : '';
}

// ---------- session ----------

export async function getSession() {
  const s = await get('/api/v1/console/session', {quiet401: true});
  setCsrf(s.csrf_token);
  return s;
}

export async function signIn(body) {
  const s = await request('POST', '/api/v1/console/session', body, {quiet401: true});
  setCsrf(s.csrf_token);
  return s;
}

export async function signOut() {
  try {
    await request('DELETE', '/api/v1/console/session', undefined, {quiet401: true});
  } finally {
    setCsrf('');
  }
}

// ---------- permissions ----------

// permissions([['service:Deploy', 'service/web'], ...]) → results in the same order, each
// {action, resource, allowed, reason}. When the check itself fails, everything is reported
// allowed: the server still decides when the action is tried, and shows its sentence then.
export async function permissions(pairs) {
  if (!pairs.length) return [];
  try {
    const r = await post('/api/v1/console/permissions',
      {checks: pairs.map(([action, resource]) => ({action, resource}))});
    return r.results;
  } catch (e) {
    if (e.status === 401) throw e;
    return pairs.map(([action, resource]) => ({action, resource, allowed: true, reason: ''}));
  }
}

// Keyed form: permMap({deploy: ['service:Deploy', 'service/web'], ...}) → {deploy: result, ...}
export async function permMap(named) {
  const keys = Object.keys(named);
  const results = await permissions(keys.map((k) => named[k]));
  const out = {};
  keys.forEach((k, i) => { out[k] = results[i]; });
  return out;
}

// ---------- live streams ----------

// An EventSource with named-event handlers, closed by the page's cleanup (the returned
// object's close()). On a stream error it checks the session once (EventSource cannot see the
// status): a signed-out user goes to the login page; otherwise EventSource's own reconnect
// carries on. While the tab is hidden the stream is closed and reopened when it shows again:
// a browser gives one site only six HTTP/1.1 connections, and background tabs holding
// streams would leave none for the tab in use.
export function stream(url, handlers, {onState} = {}) {
  let es = null;
  let closed = false;
  const handle = {close() {
    closed = true;
    document.removeEventListener('visibilitychange', onVisibility);
    if (es) es.close();
    es = null;
  }};
  const open = () => {
    const src = new EventSource(url, {withCredentials: true});
    es = src;
    for (const [event, fn] of Object.entries(handlers)) {
      src.addEventListener(event, (e) => {
        let data;
        try { data = JSON.parse(e.data); } catch { return; }
        fn(data, handle);
      });
    }
    src.addEventListener('open', () => onState && onState('live'));
    src.addEventListener('error', async () => {
      if (onState) onState(src.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
      try {
        await getSession();
      } catch (e) {
        if (e.status === 401) { handle.close(); onUnauthenticated(); }
      }
    });
  };
  function onVisibility() {
    if (closed) return;
    if (document.hidden && es) {
      es.close();
      es = null;
      if (onState) onState('reconnecting');
    } else if (!document.hidden && !es) {
      open();
    }
  }
  document.addEventListener('visibilitychange', onVisibility);
  open();
  return handle;
}
