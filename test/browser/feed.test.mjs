// The page's event-stream parser (internal/webui/static/watch.js), fed the
// watch feed's bytes in every split a network could make. Runs in Node.js
// alone: browser_test.go's TestFeedParser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEvents } from '../../internal/webui/static/watch.js';

// The start of a feed as the server writes it: an id alone (the revision
// it watches after), a ping, then two changes, one with CRLF line ends.
const stream = 'id: 7\n\n' +
  ': ping\n\n' +
  'id: 8\nevent: added\ndata: {"revision":"8","type":"TYPE_ADDED","person":{"name":"Carol"}}\n\n' +
  'id: 9\r\nevent: deleted\r\ndata: {"revision":"9","person":{"name":"Bob"}}\r\n\r\n';

const want = [
  { id: '8', event: 'added', data: '{"revision":"8","type":"TYPE_ADDED","person":{"name":"Carol"}}' },
  { id: '9', event: 'deleted', data: '{"revision":"9","person":{"name":"Bob"}}' },
];

function feed(chunks) {
  const pending = { id: '', lastId: '', event: '', data: [] };
  const events = [];
  const lastIds = [];
  let rest = '';
  for (const c of chunks) {
    const parsed = parseEvents(rest + c, pending);
    rest = parsed.rest;
    events.push(...parsed.events);
    lastIds.push(pending.lastId);
  }
  return { events, lastId: pending.lastId, lastIds, rest };
}

test('whole stream at once', () => {
  const got = feed([stream]);
  assert.deepEqual(got.events, want);
  assert.equal(got.lastId, '9');
  assert.equal(got.rest, '');
});

test('every split in two', () => {
  for (let i = 1; i < stream.length; i++) {
    const got = feed([stream.slice(0, i), stream.slice(i)]);
    assert.deepEqual(got.events, want, `split at ${i}`);
    assert.equal(got.lastId, '9', `split at ${i}`);
  }
});

test('one character at a time', () => {
  assert.deepEqual(feed([...stream]).events, want);
});

test('an id alone is where to resume from, once its event ends', () => {
  assert.equal(feed(['id: 7\n']).lastId, '', 'the event has not ended');
  assert.equal(feed(['id: 7\n\n']).lastId, '7');
  assert.deepEqual(feed(['id: 7\n\n']).events, [], 'no data: nothing to deliver');
});

test('data on several lines is joined with newlines', () => {
  assert.deepEqual(feed(['event: reset\ndata: a\ndata: b\n\n']).events, [{ id: '', event: 'reset', data: 'a\nb' }]);
});

test('an event without a name is a message; a field without a colon is empty', () => {
  assert.deepEqual(feed(['data\n\n', 'data:x\n\n']).events, [
    { id: '', event: 'message', data: '' },
    { id: '', event: 'message', data: 'x' },
  ]);
});
