// A Node.js RouteGuide client for the cross-language interop tests, built on
// @grpc/grpc-js and @grpc/proto-loader. It reads the project's .proto files at
// run time (no generated code), calls a running server and checks each answer,
// printing one line per check.
//
// Usage:
//   node client.mjs HOST:PORT          every method, from protos/
//   node client.mjs --seed HOST:PORT   GetPerson and GetPeople, from the
//                                      seed's own protos/testdata/seed/
//
// The server must hold the seed's people (Alice and Bob) and nobody named
// Carol, Dave or Erin: a fresh store. Exits 1 on the first failed check or
// unexpected RPC error.

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

// Milliseconds allowed for every call, and for each streamed answer awaited.
const TIMEOUT_MS = 10_000;

const protos = fileURLToPath(new URL('../../../protos/', import.meta.url));

// The seed's people, as a fresh store holds them.
const alice = {
  name: 'Alice', age: 30, gender: 'FEMALE', hobbies: ['reading', 'swimming'],
  address: { street: '123 Main St', city: 'New York' },
};
const bob = {
  name: 'Bob', age: 25, gender: 'MALE', hobbies: ['gaming', 'cycling'],
  address: { street: '456 Elm St', city: 'Los Angeles' },
};

// load reads route_guide.proto from dir and returns the RouteGuide client
// constructor. keepCase keeps the proto's field names (update_mask,
// page_token); defaults fills unset fields, as the seed's Python client sees
// them; int64 revisions become numbers, enums their names.
function load(dir) {
  const def = protoLoader.loadSync('route_guide.proto', {
    includeDirs: [dir],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  return grpc.loadPackageDefinition(def).RouteGuide;
}

function deadline() {
  return { deadline: Date.now() + TIMEOUT_MS };
}

// unary calls a unary method and resolves with its answer.
function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, deadline(), (err, answer) => (err ? reject(err) : resolve(answer)));
  });
}

// Stream reads a call's messages one at a time: next() resolves with the next
// message, or null once the stream has ended, and rejects on the call's error
// or when nothing arrives within TIMEOUT_MS.
class Stream {
  constructor(call) {
    this.call = call;
    this.queue = [];
    this.waiting = null;
    const push = (item) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(item);
      } else {
        this.queue.push(item);
      }
    };
    call.on('data', (m) => push({ m }));
    call.on('end', () => push({ m: null }));
    call.on('error', (err) => push({ err }));
  }

  async next(waitingFor) {
    let timer;
    const item = this.queue.length
      ? this.queue.shift()
      : await new Promise((resolve) => {
        this.waiting = resolve;
        timer = setTimeout(() => {
          this.waiting = null;
          resolve({ err: new Error(`no answer within ${TIMEOUT_MS}ms while waiting for ${waitingFor}`) });
        }, TIMEOUT_MS);
      });
    clearTimeout(timer);
    if (item.err) throw item.err;
    return item.m;
  }
}

// rejects checks that promise fails with the gRPC status code.
async function rejects(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `got ${grpc.status[err.code]} (${err.details}), want ${grpc.status[code]}`);
    return true;
  });
}

// person picks the fields the seed defines, so answers compare with deepEqual.
function person(p) {
  return {
    name: p.name, age: p.age, gender: p.gender, hobbies: p.hobbies,
    address: { street: p.address?.street ?? '', city: p.address?.city ?? '' },
  };
}

let current = 'start';

function ok(what) {
  console.log(`ok   ${what}`);
}

// check names the step that runs next, so a failure says which one broke.
function check(what) {
  current = what;
}

// getPeople sends names one at a time on a GetPeople stream. After each name
// someone has, it waits for that answer before sending the next, which proves
// answers come as names arrive and in their order; unknown names get none.
async function getPeople(client, names, known) {
  const call = client.GetPeople(deadline());
  const answers = new Stream(call);
  const got = [];
  try {
    for (const name of names) {
      call.write({ name });
      if (known.has(name)) {
        const p = await answers.next(name);
        assert.ok(p, `stream ended while waiting for ${name}`);
        got.push(person(p));
      }
    }
    call.end();
    const extra = await answers.next('the end of the stream');
    assert.equal(extra, null, `unexpected answer after the last name: ${extra?.name}`);
  } catch (err) {
    call.cancel();
    throw err;
  }
  return got;
}

async function seed(addr) {
  const client = new (load(`${protos}testdata/seed/`))(addr, grpc.credentials.createInsecure());
  try {
    check('seed GetPerson Alice');
    assert.deepEqual(person(await unary(client, 'GetPerson', { name: 'Alice' })), alice);
    ok(current);

    check('seed GetPeople Alice, Bob');
    assert.deepEqual(await getPeople(client, ['Alice', 'Bob'], new Set(['Alice', 'Bob'])), [alice, bob]);
    ok(current);
  } finally {
    client.close();
  }
}

async function full(addr) {
  const client = new (load(protos))(addr, grpc.credentials.createInsecure());
  let watch;
  try {
    check('GetPerson Alice');
    assert.deepEqual(person(await unary(client, 'GetPerson', { name: 'Alice' })), alice);
    ok(current);

    check('GetPerson Nobody answers OK with "Not Found"');
    assert.deepEqual(person(await unary(client, 'GetPerson', { name: 'Nobody' })), {
      name: 'Not Found', age: 0, gender: 'UNKNOWN', hobbies: [], address: { street: '', city: '' },
    });
    ok(current);

    check('GetPeople Bob, Nobody, Alice answers Bob then Alice, each before the next name');
    assert.deepEqual(await getPeople(client, ['Bob', 'Nobody', 'Alice'], new Set(['Alice', 'Bob'])), [bob, alice]);
    ok(current);

    // The watch sends everyone, then SYNCED; every change after that is
    // reported, so the writes below can be awaited on it.
    check('WatchPeople send_current lists Alice and Bob, then SYNCED');
    const call = client.WatchPeople({ send_current: true });
    watch = { call, events: new Stream(call) };
    const snapshot = [];
    for (;;) {
      const e = await watch.events.next('SYNCED');
      assert.ok(e, 'the watch ended before SYNCED');
      if (e.type === 'TYPE_SYNCED') break;
      assert.equal(e.type, 'TYPE_CURRENT');
      snapshot.push(person(e.person));
    }
    assert.deepEqual(snapshot, [alice, bob]);
    ok(current);
    const expectEvent = async (type, name, revision) => {
      const e = await watch.events.next(`${type} ${name}`);
      assert.ok(e, `the watch ended while waiting for ${type} ${name}`);
      assert.deepEqual([e.type, e.person.name, e.revision], [type, name, revision]);
      return e;
    };

    const carol = {
      name: 'Carol', age: 40, gender: 'FEMALE', hobbies: ['chess'],
      address: { street: '1 Node Way', city: 'Lisbon' },
    };
    check('AddPerson Carol');
    const added = await unary(client, 'AddPerson', { person: carol });
    assert.deepEqual(person(added.person), carol);
    assert.ok(added.revision > 0, `revision ${added.revision}, want > 0`);
    ok(current);

    check('WatchPeople sees ADDED Carol');
    await expectEvent('TYPE_ADDED', 'Carol', added.revision);
    ok(current);

    check('AddPerson Carol again is ALREADY_EXISTS');
    await rejects(unary(client, 'AddPerson', { person: carol }), grpc.status.ALREADY_EXISTS);
    ok(current);

    check('AddPerson with age -1 is INVALID_ARGUMENT');
    await rejects(unary(client, 'AddPerson', { person: { name: 'Zed', age: -1 } }), grpc.status.INVALID_ARGUMENT);
    ok(current);

    check('UpdatePerson Carol with update_mask age changes only the age');
    const updated = await unary(client, 'UpdatePerson', {
      // The city is set but not in the mask: it must stay Lisbon.
      person: { name: 'Carol', age: 41, address: { city: 'Porto' } },
      update_mask: { paths: ['age'] },
    });
    assert.deepEqual(person(updated.person), { ...carol, age: 41 });
    assert.ok(updated.revision > added.revision, `revision ${updated.revision}, want > ${added.revision}`);
    assert.deepEqual(person(await unary(client, 'GetPerson', { name: 'Carol' })), { ...carol, age: 41 });
    ok(current);

    check('WatchPeople sees UPDATED Carol');
    assert.equal((await expectEvent('TYPE_UPDATED', 'Carol', updated.revision)).person.age, 41);
    ok(current);

    check('UpdatePerson Nobody is NOT_FOUND');
    await rejects(unary(client, 'UpdatePerson', {
      person: { name: 'Nobody', age: 1 }, update_mask: { paths: ['age'] },
    }), grpc.status.NOT_FOUND);
    ok(current);

    const dave = { name: 'Dave', age: 50, gender: 'MALE', hobbies: [], address: { street: '', city: 'Lisbon' } };
    const erin = { name: 'Erin', age: 22, gender: 'FEMALE', hobbies: ['climbing'], address: { street: '', city: 'Lisbon' } };
    check('ImportPeople in two batches adds Dave and Erin and replaces Carol');
    const imported = await new Promise((resolve, reject) => {
      const stream = client.ImportPeople(deadline(), (err, answer) => (err ? reject(err) : resolve(answer)));
      stream.write({ people: [dave, erin] });
      stream.write({ people: [{ ...carol, age: 42 }] });
      stream.end();
    });
    assert.deepEqual([imported.added, imported.updated], [2, 1]);
    assert.ok(imported.revision > updated.revision, `revision ${imported.revision}, want > ${updated.revision}`);
    assert.deepEqual(person(await unary(client, 'GetPerson', { name: 'Erin' })), erin);
    assert.equal((await unary(client, 'GetPerson', { name: 'Carol' })).age, 42);
    ok(current);

    check('WatchPeople sees the import: ADDED Dave, ADDED Erin, UPDATED Carol');
    const importEvents = [];
    for (let i = 0; i < 3; i++) {
      const e = await watch.events.next('the import');
      assert.ok(e, 'the watch ended during the import');
      importEvents.push([e.type, e.person.name]);
      assert.ok(e.revision > updated.revision && e.revision <= imported.revision,
        `revision ${e.revision}, want in (${updated.revision}, ${imported.revision}]`);
    }
    assert.deepEqual(importEvents, [['TYPE_ADDED', 'Dave'], ['TYPE_ADDED', 'Erin'], ['TYPE_UPDATED', 'Carol']]);
    ok(current);

    check('ListPeople pages of 2 with page_token list everyone in name order');
    const names = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await unary(client, 'ListPeople', { page_size: 2, page_token: pageToken });
      assert.ok(page.people.length <= 2, `a page of ${page.people.length}, want at most 2`);
      names.push(...page.people.map((p) => p.name));
      pageToken = page.next_page_token;
      pages++;
      assert.ok(pages <= 10, 'more than 10 pages for 5 people');
    } while (pageToken !== '');
    assert.deepEqual(names, ['Alice', 'Bob', 'Carol', 'Dave', 'Erin']);
    assert.equal(pages, 3);
    ok(current);

    check('ListPeople filters by city and hobby');
    const lisbon = await unary(client, 'ListPeople', { city: 'Lisbon', hobby: 'climbing' });
    assert.deepEqual(lisbon.people.map(person), [erin]);
    assert.equal(lisbon.next_page_token, '');
    ok(current);

    check('DeletePerson Carol, then GetPerson Carol is "Not Found"');
    const deleted = await unary(client, 'DeletePerson', { name: 'Carol' });
    assert.ok(deleted.revision > imported.revision, `revision ${deleted.revision}, want > ${imported.revision}`);
    assert.equal((await unary(client, 'GetPerson', { name: 'Carol' })).name, 'Not Found');
    ok(current);

    check('WatchPeople sees DELETED Carol');
    await expectEvent('TYPE_DELETED', 'Carol', deleted.revision);
    ok(current);

    check('DeletePerson Carol again is NOT_FOUND');
    await rejects(unary(client, 'DeletePerson', { name: 'Carol' }), grpc.status.NOT_FOUND);
    ok(current);

    check('WatchPeople after_revision replays the changes after the add');
    const replay = client.WatchPeople({ after_revision: added.revision });
    const replayed = new Stream(replay);
    const types = [];
    try {
      while (types.length < 5) {
        const e = await replayed.next('the replayed changes');
        assert.ok(e, 'the replay ended early');
        types.push(`${e.type} ${e.person.name}`);
      }
    } finally {
      replay.cancel();
    }
    assert.deepEqual(types, [
      'TYPE_UPDATED Carol', 'TYPE_ADDED Dave', 'TYPE_ADDED Erin', 'TYPE_UPDATED Carol', 'TYPE_DELETED Carol',
    ]);
    ok(current);
  } finally {
    watch?.call.cancel();
    client.close();
  }
}

const args = process.argv.slice(2);
const seedMode = args[0] === '--seed';
const addr = seedMode ? args[1] : args[0];
if (!addr || args.length !== (seedMode ? 2 : 1)) {
  console.error('usage: node client.mjs [--seed] HOST:PORT');
  process.exit(2);
}
try {
  await (seedMode ? seed(addr) : full(addr));
} catch (err) {
  const detail = err.code !== undefined && grpc.status[err.code] ? `${grpc.status[err.code]} ${err.details}` : err.message;
  console.log(`FAIL ${current}: ${detail}`);
  console.error(err.stack ?? err);
  process.exit(1);
}
console.log('node client: ok');
process.exit(0);
