// The watch feed, GET /v1/people:watch, read as Server-Sent Events through
// fetch() rather than EventSource, which cannot send an Authorization header.
// The feed reconnects by itself with backoff and resumes after the last
// event it saw by sending Last-Event-ID.

import { authHeaders } from './api.js';

const path = '/v1/people:watch';

// The server writes a ": ping" comment every 15 s; a feed silent for three of
// them is taken for dead (a proxy or a sleeping laptop can keep a dead
// connection open) and opened again.
const silenceLimitMs = 45_000;
const firstRetryMs = 250;
const maxRetryMs = 5_000;

// parseEvents splits text/event-stream lines into events, as the WHATWG
// event-stream algorithm does for the fields the feed uses (id, event, data;
// retry is not used and comments are skipped). A few lines, so the page
// needs no library and no build step. pending carries what is read of the
// event in progress across calls, and lastId, the id to resume from: it is
// set when an event ends, even one with no data (the feed starts with an id
// alone, the revision it watches after). It returns the events complete in
// buffer and the unread rest.
export function parseEvents(buffer, pending) {
  const events = [];
  let start = 0;
  for (;;) {
    const nl = buffer.indexOf('\n', start);
    if (nl < 0) break;
    let line = buffer.slice(start, nl);
    start = nl + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '') {
      pending.lastId = pending.id;
      if (pending.data.length > 0) {
        events.push({ id: pending.id, event: pending.event || 'message', data: pending.data.join('\n') });
      }
      pending.event = '';
      pending.data = [];
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id' && !value.includes('\0')) pending.id = value;
    else if (field === 'event') pending.event = value;
    else if (field === 'data') pending.data.push(value);
  }
  return { events, rest: buffer.slice(start) };
}

// Feed follows the watch feed until stop() is called. Its callbacks:
//   onState(state, detail): 'connecting', 'live', 'reconnecting' (detail: ms
//     until the next try), 'token' (the server wants a token; call retry()
//     once there is one)
//   onOpen(resumed): the feed is connected; resumed is false when changes
//     may have been missed (a first connection, or one that could not resume)
//   onChange(type, person, revision): type is added, updated or deleted
//   onReset(): the changes since the last event are no longer kept; the
//     feed starts again from now, after which onOpen(false) follows
export class Feed {
  #callbacks;
  #lastId = '';
  #stopped = false;
  #abort = null;
  #wake = null; // ends the wait before the next try

  constructor(callbacks) {
    this.#callbacks = callbacks;
  }

  start() {
    this.#run();
  }

  stop() {
    this.#stopped = true;
    this.#abort?.abort();
    this.#wake?.();
  }

  // retry connects at once, without waiting out the backoff.
  retry() {
    this.#wake?.();
  }

  // restart drops the current connection and connects again at once.
  restart() {
    this.#abort?.abort();
    this.#wake?.();
  }

  async #run() {
    let failures = 0;
    while (!this.#stopped) {
      this.#callbacks.onState(failures === 0 ? 'connecting' : 'reconnecting', 0);
      const outcome = await this.#connect();
      if (this.#stopped) return;
      if (outcome === 'token') {
        this.#callbacks.onState('token', 0);
        await this.#sleep(Infinity);
        failures = 0;
        continue;
      }
      if (outcome === 'reset') {
        failures = 0;
        continue;
      }
      // 'opened' means the feed ran and then ended: try again at once the
      // first time, so a server restart is noticed quickly.
      failures = outcome === 'opened' ? 1 : failures + 1;
      const base = Math.min(maxRetryMs, firstRetryMs * 2 ** (failures - 1));
      const delay = Math.round(base / 2 + Math.random() * base / 2);
      this.#callbacks.onState('reconnecting', delay);
      await this.#sleep(delay);
    }
  }

  #sleep(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      this.#wake = done;
    });
  }

  // #connect opens the feed and reads it until it ends. It returns 'opened'
  // when the feed was open, 'failed' when it could not open, 'token' for a
  // 401 and 'reset' after a reset event.
  async #connect() {
    const abort = new AbortController();
    this.#abort = abort;
    let silence;
    const arm = () => {
      clearTimeout(silence);
      silence = setTimeout(() => abort.abort(), silenceLimitMs);
    };
    const headers = authHeaders({ Accept: 'text/event-stream' });
    const resuming = this.#lastId !== '';
    if (resuming) headers.set('Last-Event-ID', this.#lastId);
    let opened = false;
    try {
      arm();
      const res = await fetch(path, { headers, signal: abort.signal, cache: 'no-store', credentials: 'same-origin' });
      if (res.status === 401) {
        await res.body?.cancel();
        return 'token';
      }
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        // A revision the server cannot resume from (a store that started
        // empty again, say) is refused; start afresh next time.
        if (resuming && res.status >= 400 && res.status < 500) this.#lastId = '';
        return 'failed';
      }
      opened = true;
      this.#callbacks.onState('live', 0);
      this.#callbacks.onOpen(resuming);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const pending = { id: this.#lastId, lastId: this.#lastId, event: '', data: [] };
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'opened';
        arm();
        const parsed = parseEvents(buffer + value, pending);
        buffer = parsed.rest;
        for (const e of parsed.events) {
          if (e.event === 'reset') {
            this.#lastId = '';
            abort.abort();
            this.#callbacks.onReset();
            return 'reset';
          }
          this.#deliver(e);
        }
        this.#lastId = pending.lastId;
      }
    } catch {
      // The server went away, the network failed, or the feed was silent
      // too long or restarted.
      return opened ? 'opened' : 'failed';
    } finally {
      clearTimeout(silence);
    }
  }

  #deliver(e) {
    if (e.event !== 'added' && e.event !== 'updated' && e.event !== 'deleted') return;
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return; // not the feed's JSON: nothing to show
    }
    if (!msg?.person?.name) return;
    this.#callbacks.onChange(e.event, msg.person, e.id);
  }
}
