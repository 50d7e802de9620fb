// The page's client for the JSON API under /api (docs/api.md). Every call resolves to the
// parsed JSON answer or rejects with an ApiError carrying the server's own message, so the
// page can show the shopper what went wrong in the server's words.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

async function call(url, init = {}) {
  let res;
  try {
    res = await fetch(url, { ...init, headers: { Accept: 'application/json', ...(init.headers || {}) } });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the server could not be reached');
  }
  let body = null;
  if ((res.headers.get('Content-Type') || '').startsWith('application/json')) {
    try {
      body = await res.json();
    } catch (e) {
      if (e.name === 'AbortError') throw e;
    }
  }
  if (!res.ok) {
    const err = body && body.error;
    const message = err && err.message ? err.message : `the server answered ${res.status} ${res.statusText}`;
    throw new ApiError(res.status, (err && err.code) || `http_${res.status}`, message);
  }
  if (body === null) throw new ApiError(res.status, 'bad_reply', 'the server did not answer with JSON');
  return body;
}

const seg = encodeURIComponent;
const base = (coll) => `/api/collections/${seg(coll)}`;

export const imageUrl = (coll, id) => `${base(coll)}/products/${seg(id)}/image`;

export const listCollections = (signal) => call('/api/collections', { signal });

export const facets = (coll, signal) => call(`${base(coll)}/facets`, { signal });

export function listProducts(coll, { limit, cursor }, signal) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (cursor) q.set('cursor', cursor);
  return call(`${base(coll)}/products?${q}`, { signal });
}

// query: the search JSON (text, product_id, filters, k, offset); photo: a File or null. With a
// photo the request is multipart (an "image" part and a "query" part), as the API asks.
export function search(coll, query, photo, signal) {
  if (photo) {
    const form = new FormData();
    form.append('image', photo, photo.name || 'photo');
    form.append('query', JSON.stringify(query));
    return call(`${base(coll)}/search`, { method: 'POST', body: form, signal });
  }
  return call(`${base(coll)}/search`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(query),
    signal,
  });
}
