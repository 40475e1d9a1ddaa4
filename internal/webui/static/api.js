// The REST routes under /v1/ and their errors. Every request carries the
// access token, when there is one, as an Authorization header: never in an
// address, where logs and the browser's history would keep it.

const tokenKey = 'routeguide.token';

// The token lives in sessionStorage, so it lasts as long as the tab and is
// not shared with other tabs or kept after the browser closes. Where storage
// is refused (some private modes), it is kept in memory for this page only.
let memoryToken = '';

export function token() {
  try {
    return sessionStorage.getItem(tokenKey) ?? '';
  } catch {
    return memoryToken;
  }
}

export function setToken(value) {
  memoryToken = value;
  try {
    if (value) sessionStorage.setItem(tokenKey, value);
    else sessionStorage.removeItem(tokenKey);
  } catch {
    // memoryToken holds it.
  }
}

// authHeaders returns headers with the token added, if there is one.
export function authHeaders(init) {
  const headers = new Headers(init);
  const t = token();
  if (t) headers.set('Authorization', `Bearer ${t}`);
  return headers;
}

// APIError is a failed request: the HTTP status (0 when the server could not
// be reached), the google.rpc.Status message, and the field violations of a
// google.rpc.BadRequest detail, each {field, description} with the proto
// field path ("age", "address.city").
export class APIError extends Error {
  constructor(status, message, violations = []) {
    super(message);
    this.name = 'APIError';
    this.status = status;
    this.violations = violations;
  }
}

const badRequestType = 'type.googleapis.com/google.rpc.BadRequest';

// errorFrom reads the google.rpc.Status JSON of a failed response.
function errorFrom(status, body) {
  const violations = [];
  for (const d of body?.details ?? []) {
    if (d?.['@type'] !== badRequestType) continue;
    for (const v of d.fieldViolations ?? []) {
      violations.push({ field: String(v.field ?? ''), description: String(v.description ?? '') });
    }
  }
  const message = typeof body?.message === 'string' && body.message
    ? body.message
    : `The server answered ${status}.`;
  return new APIError(status, message, violations);
}

async function request(method, path, { body, signal } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  const init = { method, headers, signal, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new APIError(0, 'The server cannot be reached.');
  }
  const text = await res.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      // Not JSON (a proxy's error page, say): the status says enough.
    }
  }
  if (!res.ok) throw errorFrom(res.status, json);
  return json;
}

function personPath(name) {
  return `/v1/people/${encodeURIComponent(name)}`;
}

// listPeople returns one page: {people, nextPageToken}.
export async function listPeople({ namePrefix, city, hobby, pageSize, pageToken }, signal) {
  const q = new URLSearchParams();
  if (namePrefix) q.set('name_prefix', namePrefix);
  if (city) q.set('city', city);
  if (hobby) q.set('hobby', hobby);
  if (pageSize) q.set('page_size', String(pageSize));
  if (pageToken) q.set('page_token', pageToken);
  const page = await request('GET', `/v1/people?${q}`, { signal });
  return { people: page?.people ?? [], nextPageToken: page?.nextPageToken ?? '' };
}

export function getPerson(name, signal) {
  return request('GET', personPath(name), { signal });
}

export function addPerson(person) {
  return request('POST', '/v1/people', { body: person });
}

// updatePerson changes the fields named in mask ("age", "address.city", ...)
// to their values in person.
export function updatePerson(name, person, mask) {
  const q = new URLSearchParams({ update_mask: mask.join(',') });
  return request('PATCH', `${personPath(name)}?${q}`, { body: person });
}

export function deletePerson(name) {
  return request('DELETE', personPath(name));
}
