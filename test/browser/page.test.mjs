// RouteGuide's web page in headless Chromium, step by step, against a real
// `routeguide serve`. browser_test.go starts the server and passes:
//   ROUTEGUIDE_URL          the page
//   ROUTEGUIDE_CONTROL      where to ask for a routeguide command to be run
//                           (POST /routeguide with the arguments as JSON), or
//                           for the server to stop (POST /stop) and start
//                           again on the same ports and store (POST /start,
//                           ?tokens=1 to require a token)
//   ROUTEGUIDE_SCREENSHOTS  where each step's screenshot goes
//   ROUTEGUIDE_CHROMIUM     the browser to run
//   ROUTEGUIDE_WRITER_TOKEN a writer's and a reader's token the server takes
//   ROUTEGUIDE_READER_TOKEN once it needs one
// The steps build on each other, so once one fails the rest are skipped.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this through browser_test.go`);
  return v;
};
const base = env('ROUTEGUIDE_URL');
const control = env('ROUTEGUIDE_CONTROL');
const shots = env('ROUTEGUIDE_SCREENSHOTS');
const writerToken = env('ROUTEGUIDE_WRITER_TOKEN');
const readerToken = env('ROUTEGUIDE_READER_TOKEN');

// How long a change may take to show: generous, as the machine running the
// tests may be busy; the time each took is printed.
const liveTimeout = 10_000;

let browser;
let page;
let shot = 0;
let failed = false;
let navigations = 0; // loads of the page itself: live changes need none
const problems = []; // script errors and Content Security Policy refusals
const requests = []; // every address the page asked for, with its headers

// routeguide runs a routeguide command in another process.
async function routeguide(...args) {
  const headers = { 'Content-Type': 'application/json' };
  if (cliToken) headers['X-Routeguide-Token'] = cliToken;
  const res = await fetch(`${control}/routeguide`, { method: 'POST', headers, body: JSON.stringify(args) });
  const text = await res.text();
  if (!res.ok) throw new Error(text);
  return text;
}
let cliToken = '';

async function server(action, query = '') {
  const res = await fetch(`${control}/${action}${query}`, { method: 'POST' });
  if (!res.ok) throw new Error(`${action}: ${await res.text()}`);
}

// step is a test that is skipped once an earlier one failed.
function step(name, fn) {
  test(name, async (t) => {
    if (failed) {
      t.skip('an earlier step failed');
      return;
    }
    try {
      await fn(t);
    } catch (err) {
      failed = true;
      throw err;
    }
  });
}

const list = () => page.locator('#people');
const row = (name) => list().getByRole('link', { name, exact: true });
// item is the list item of the person called name.
const item = (name) => list().locator('li').filter({ has: page.getByRole('link', { name, exact: true }) });
const editor = () => page.locator('#editor');
const field = (label) => editor().getByLabel(label, { exact: true });
const connection = () => page.locator('#conn-text');

// snap saves a screenshot within a step, named after the step to come.
async function snap(label) {
  await page.screenshot({ path: path.join(shots, `${String(shot + 1).padStart(2, '0')}-${label}.png`), fullPage: true });
}

// focused waits until the element with this id has the keyboard focus.
async function focused(id) {
  await page.waitForFunction((want) => document.activeElement?.id === want, id, { timeout: 5_000 })
    .catch(async () => {
      const got = await page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);
      throw new Error(`focus is on ${got}, want #${id}`);
    });
}

// waitLive waits for name to appear in (or, with gone, leave) the list, and
// says how long it took.
async function waitLive(name, { gone = false } = {}) {
  const start = Date.now();
  await row(name).waitFor({ state: gone ? 'detached' : 'visible', timeout: liveTimeout });
  console.log(`# ${name} ${gone ? 'left' : 'showed in'} the open page after ${Date.now() - start} ms`);
}

before(async () => {
  browser = await chromium.launch({
    executablePath: env('ROUTEGUIDE_CHROMIUM'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  // A phone's width: the page must be usable at 360 px.
  const context = await browser.newContext({ viewport: { width: 360, height: 780 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.setDefaultNavigationTimeout(30_000);
  page.on('pageerror', (err) => problems.push(`script error: ${err.message}`));
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations++;
  });
  page.on('request', (req) => requests.push({ url: req.url(), headers: req.headers() }));
});

afterEach(async (t) => {
  if (!page) return;
  shot++;
  const name = `${String(shot).padStart(2, '0')}-${t.name.replace(/[^a-z0-9]+/gi, '-').replace(/-$/, '')}.png`;
  await page.screenshot({ path: path.join(shots, name), fullPage: true }).catch((err) => {
    console.log(`# screenshot ${name}: ${err.message}`);
  });
});

after(async () => {
  await browser?.close();
});

step('the page lists Alice and Bob, and the feed is live', async () => {
  await page.goto(base);
  await row('Alice').waitFor();
  await row('Bob').waitFor();
  await page.getByText('2 people on page 1.').waitFor();
  await connection().filter({ hasText: /^live$/ }).waitFor();
});

step('nothing is wider than a 360 px screen', async () => {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `the page is ${width} px wide`);
});

step('every control has a label', async () => {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()))
      .map((el) => el.id || el.outerHTML));
  assert.deepEqual(unlabelled, []);
});

step('opening a person shows their details', async () => {
  await row('Alice').click();
  const detail = page.locator('#detail');
  await detail.getByRole('heading', { name: 'Alice' }).waitFor();
  await detail.getByText('New York').waitFor();
  await detail.getByText('reading, swimming').waitFor();
  assert.match(page.url(), /#\/people\/Alice$/);
});

step('adding Carol through the form shows her', async () => {
  await page.getByRole('button', { name: 'Add a person' }).click();
  await field('Name').fill('Carol');
  await field('Age').fill('41');
  await field('Gender').selectOption('FEMALE');
  await field('Hobbies, one a line').fill('chess\nrowing');
  await field('Street').fill('1 Oak St');
  await field('City').fill('Boston');
  await editor().getByRole('button', { name: 'Add', exact: true }).click();
  await row('Carol').waitFor();
  await page.locator('#detail').getByRole('heading', { name: 'Carol' }).waitFor();
  await page.getByText('Added Carol.').waitFor();
  const { etag, ...stored } = JSON.parse(await routeguide('get', '-o', 'json', 'Carol'));
  assert.match(etag, /^[0-9a-f]+$/);
  assert.deepEqual(stored, {
    name: 'Carol', age: 41, gender: 'FEMALE', hobbies: ['chess', 'rowing'],
    address: { street: '1 Oak St', city: 'Boston' },
  });
});

step('a bad age shows the server\'s error beside the field', async () => {
  await page.getByRole('button', { name: 'Add a person' }).click();
  await field('Name').fill('Dan');
  await field('Age').fill('200');
  await editor().getByRole('button', { name: 'Add', exact: true }).click();
  const error = page.locator('#f-age-error');
  await error.filter({ hasText: /\S/ }).waitFor();
  const text = await error.textContent();
  assert.match(text, /150/, `the age error says: ${text}`);
  assert.equal(await field('Age').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#f-name-error').textContent(), '', 'only the age is at fault');
  // The error is announced with the field: the field points at it.
  assert.match(await field('Age').getAttribute('aria-describedby'), /f-age-error/);
  await focused('f-age');
  await editor().getByRole('button', { name: 'Cancel' }).click();
  await editor().waitFor({ state: 'hidden' });
  assert.equal(await row('Dan').count(), 0);
});

step('a change made with routeguide add appears in the open page without a reload', async () => {
  const before = navigations;
  await routeguide('add', '--name', 'Erin', '--age', '33', '--city', 'Paris', '--hobby', 'chess');
  await waitLive('Erin');
  await routeguide('update', 'Alice', '--age', '31');
  await item('Alice').getByText('age 31').waitFor({ timeout: liveTimeout });
  assert.equal(navigations, before, 'the page was loaded again');
});

step('editing Bob saves only what changed', async () => {
  await row('Bob').click();
  await page.locator('#detail').getByRole('heading', { name: 'Bob' }).waitFor();
  await page.getByRole('button', { name: 'Edit' }).click();
  assert.equal(await field('Name').inputValue(), 'Bob');
  assert.equal(await field('Name').getAttribute('readonly'), '');
  await field('Age').fill('26');
  await field('City').fill('San Diego');
  await editor().getByRole('button', { name: 'Save changes' }).click();
  await page.getByText('Saved Bob.').waitFor();
  await page.locator('#detail').getByText('San Diego').waitFor();
  await item('Bob').getByText('age 26 · San Diego').waitFor();
  const { etag, ...stored } = JSON.parse(await routeguide('get', '-o', 'json', 'Bob'));
  assert.match(etag, /^[0-9a-f]+$/);
  assert.deepEqual(stored, {
    name: 'Bob', age: 26, gender: 'MALE', hobbies: ['gaming', 'cycling'],
    address: { street: '456 Elm St', city: 'San Diego' },
  });
});

step('deleting Carol asks first, then removes her', async () => {
  await row('Carol').click();
  await page.locator('#detail').getByRole('heading', { name: 'Carol' }).waitFor();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByText('Delete Carol? This cannot be undone.').waitFor();
  await page.getByRole('button', { name: 'Delete Carol' }).click();
  await page.getByText('Deleted Carol.').waitFor();
  await row('Carol').waitFor({ state: 'detached' });
  const left = await routeguide('list');
  assert.doesNotMatch(left, /Carol/);
});

step('a person deleted elsewhere leaves the open page', async () => {
  await routeguide('delete', 'Erin');
  await waitLive('Erin', { gone: true });
});

step('search by name prefix, city and hobby', async () => {
  await routeguide('add', '--name', 'Alfred', '--age', '60', '--city', 'Paris', '--hobby', 'chess');
  await waitLive('Alfred');
  const names = async () => list().locator('a.name').allTextContents();
  const search = page.locator('#search');
  await search.getByLabel('Name starts with').fill('Al');
  await page.getByText(/2 people on page 1: names starting with “Al”/).waitFor();
  assert.deepEqual(await names(), ['Alfred', 'Alice']);
  await search.getByLabel('City').fill('Paris');
  await page.getByText(/1 person on page 1/).waitFor();
  assert.deepEqual(await names(), ['Alfred']);
  await search.getByLabel('Name starts with').fill('');
  await search.getByLabel('City').fill('');
  await search.getByLabel('Hobby').fill('gaming');
  await search.getByLabel('Hobby').press('Enter');
  await page.getByText(/1 person on page 1: who like gaming/).waitFor();
  assert.deepEqual(await names(), ['Bob']);
  await search.getByRole('button', { name: 'Clear' }).click();
  await page.getByText('3 people on page 1.').waitFor();
});

step('paging goes through more people than one page holds', async () => {
  for (let i = 1; i <= 10; i++) {
    await routeguide('add', '--name', `Page ${String(i).padStart(2, '0')}`, '--age', String(20 + i));
  }
  await page.locator('#search').getByLabel('People per page').selectOption('10');
  await page.getByText('10 people on page 1.').waitFor();
  const next = page.getByRole('button', { name: 'Next' });
  await next.click();
  await page.getByText('3 people on page 2.').waitFor();
  assert.deepEqual(await list().locator('a.name').allTextContents(), ['Page 08', 'Page 09', 'Page 10']);
  assert.equal(await next.isDisabled(), true);
  await page.getByRole('button', { name: 'Previous' }).click();
  await page.getByText('10 people on page 1.').waitFor();
  await page.locator('#search').getByLabel('People per page').selectOption('25');
  await page.getByText('13 people on page 1.').waitFor();
});

step('the keyboard alone opens, edits and closes', async () => {
  await row('Alice').focus();
  await page.keyboard.press('Enter');
  await page.locator('#detail').getByRole('heading', { name: 'Alice' }).waitFor();
  await focused('detail-heading');
  // Edit is enabled once the person has loaded; until then Tab passes it.
  await page.waitForFunction(() => !document.getElementById('edit-button').disabled);
  await page.keyboard.press('Tab');
  await focused('edit-button');
  // Focus is visible: an outline drawn around the focused control.
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none');
  await page.keyboard.press('Enter');
  await editor().waitFor();
  await focused('f-age');
  await page.keyboard.press('Escape');
  await editor().waitFor({ state: 'hidden' });
  await focused('edit-button');
  await page.keyboard.press('Escape');
  await page.locator('#detail').waitFor({ state: 'hidden' });
});

step('the page keeps working after the server restarts', async () => {
  const before = navigations;
  await server('stop');
  await connection().filter({ hasText: 'reconnecting…' }).waitFor();
  await snap('server-stopped');
  await server('start');
  await connection().filter({ hasText: /^live$/ }).waitFor({ timeout: liveTimeout });
  await routeguide('add', '--name', 'Frank', '--age', '50', '--city', 'Oslo');
  await waitLive('Frank');
  assert.equal(navigations, before, 'the page was loaded again');
});

step('a server that needs a token gets one from the page, in a header', async () => {
  await server('stop');
  await server('start', '?tokens=1');
  cliToken = writerToken;
  const form = page.locator('#token-form');
  await form.waitFor({ timeout: liveTimeout });
  await connection().filter({ hasText: 'waiting for an access token' }).waitFor();
  await snap('token-asked');
  await focused('token');
  await form.getByLabel('Token').fill(readerToken);
  await form.getByRole('button', { name: 'Use this token' }).click();
  await form.waitFor({ state: 'hidden' });
  await connection().filter({ hasText: /^live$/ }).waitFor({ timeout: liveTimeout });

  // A reader's token reads but may not write: the page says so and asks
  // for another, keeping what was typed.
  await page.getByRole('button', { name: 'Add a person' }).click();
  await field('Name').fill('Hank');
  await field('Age').fill('44');
  await editor().getByRole('button', { name: 'Add', exact: true }).click();
  await page.locator('#editor-error').filter({ hasText: 'may only read' }).waitFor();
  await form.waitFor();
  await snap('reader-token-refused');
  await form.getByLabel('Token').fill(writerToken);
  await form.getByRole('button', { name: 'Use this token' }).click();
  await form.waitFor({ state: 'hidden' });
  assert.equal(await field('Name').inputValue(), 'Hank');
  await editor().getByRole('button', { name: 'Add', exact: true }).click();
  await row('Hank').waitFor();
  await routeguide('add', '--name', 'Grace', '--age', '36');
  await waitLive('Grace');
  // A write from the page carries the token too.
  await row('Grace').click();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('button', { name: 'Delete Grace' }).click();
  await row('Grace').waitFor({ state: 'detached' });

  const api = requests.filter((r) => new URL(r.url).pathname.startsWith('/v1/'));
  for (const token of [readerToken, writerToken]) {
    assert.ok(api.some((r) => r.headers.authorization === `Bearer ${token}`), 'no request carried the token');
    for (const r of requests) assert.ok(!r.url.includes(token), `a token is in an address: ${r.url}`);
  }
});

step('no script error, nothing refused by the Content Security Policy, nothing fetched from elsewhere', async () => {
  assert.deepEqual(problems, []);
  const origin = new URL(base).origin;
  const elsewhere = requests.map((r) => r.url).filter((u) => new URL(u).origin !== origin);
  assert.deepEqual(elsewhere, []);
});
