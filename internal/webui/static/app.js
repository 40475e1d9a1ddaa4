// The directory page: a list of people filtered and paged by the server,
// one person's details, a form to add or edit, and the watch feed, which
// makes a change made anywhere show here within a moment.

import * as api from './api.js';
import { Feed } from './watch.js';

const $ = (id) => document.getElementById(id);

const genders = { UNKNOWN: 'Not given', FEMALE: 'Female', MALE: 'Male' };

// The editor's fields: the proto field path each edits, the element and how
// a person's value is shown in it.
const fields = [
  { path: 'name', id: 'f-name' },
  { path: 'age', id: 'f-age' },
  { path: 'gender', id: 'f-gender' },
  { path: 'hobbies', id: 'f-hobbies' },
  { path: 'address.street', id: 'f-street' },
  { path: 'address.city', id: 'f-city' },
];

const state = {
  query: { namePrefix: '', city: '', hobby: '', pageSize: 25 },
  pageTokens: [''], // pageTokens[i] is where page i starts
  page: 0,
  people: [],
  nextPageToken: '',
  listError: '',
  selected: null, // the person in the detail panel
  detailNote: '', // the note shown with them
  detailMissing: false, // whether they could not be loaded (or not yet)
  editing: null, // {mode: 'add'} or {mode: 'edit', person}
  saving: false,
  returnFocus: null, // where focus goes when the editor closes
  changed: new Map(), // name -> time of a change seen on the feed
};

// normalize fills in what protojson leaves out: zero values are not sent.
function normalize(p) {
  return {
    name: p?.name ?? '',
    age: p?.age ?? 0,
    gender: p?.gender ?? 'UNKNOWN',
    hobbies: p?.hobbies ?? [],
    address: { street: p?.address?.street ?? '', city: p?.address?.city ?? '' },
  };
}

function personHash(name) {
  return `#/people/${encodeURIComponent(name)}`;
}

function hashName() {
  const m = /^#\/people\/(.+)$/.exec(location.hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

// say puts a short status under the search form, read out by screen
// readers, and clears it after a while so it does not describe an old state.
let sayTimer = 0;
function say(text) {
  $('message').textContent = text;
  clearTimeout(sayTimer);
  sayTimer = setTimeout(() => {
    $('message').textContent = '';
  }, 15_000);
}

// ---- the access token ----

// needsToken shows the token form when err is a 401 and reports whether it
// was one.
function needsToken(err) {
  if (err?.status !== 401) return false;
  askForToken(api.token() ? 'The server did not accept this token. Enter another.' : 'This server needs an access token.');
  return true;
}

function askForToken(why) {
  const form = $('token-form');
  $('token-why').textContent = `${why} It is kept in this browser tab only and sent in a header, never in an address.`;
  $('token-forget').hidden = !api.token();
  if (form.hidden) {
    form.hidden = false;
    $('token').focus();
  }
}

function setupToken() {
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = $('token').value.trim();
    if (!value) {
      $('token').focus();
      return;
    }
    api.setToken(value);
    $('token').value = '';
    $('token-form').hidden = true;
    say('Token saved for this tab.');
    reloadEverything();
  });
  $('token-forget').addEventListener('click', () => {
    api.setToken('');
    $('token-form').hidden = true;
    say('Token forgotten.');
    reloadEverything();
  });
}

function reloadEverything() {
  loadList();
  feed.restart();
  const name = hashName();
  if (name && !state.editing) openPerson(name, { focus: false });
}

// readOnly says that the token may not write, and offers to change it.
function readOnly(show) {
  show('This token may only read the directory: enter a writer’s token above, then try again.');
  askForToken('This token may only read the directory.');
}

// ---- the list ----

let listAbort = null;

async function loadList() {
  listAbort?.abort();
  const abort = new AbortController();
  listAbort = abort;
  try {
    const page = await api.listPeople({ ...state.query, pageToken: state.pageTokens[state.page] }, abort.signal);
    if (listAbort !== abort) return;
    state.people = page.people.map(normalize);
    state.nextPageToken = page.nextPageToken;
    state.listError = '';
  } catch (err) {
    if (err.name === 'AbortError' || listAbort !== abort) return;
    if (needsToken(err)) {
      state.listError = 'The list needs an access token.';
    } else if (err.status === 400 && state.page > 0) {
      // A page token the server no longer takes: start from the first page.
      state.pageTokens = [''];
      state.page = 0;
      return loadList();
    } else {
      state.listError = err.status === 0
        ? 'The server cannot be reached. The list will load again when it is back.'
        : `The list could not be loaded: ${err.message}`;
    }
  } finally {
    if (listAbort === abort) listAbort = null;
  }
  renderList();
}

// Changes on the feed reload the page of people being shown: the server
// filters and orders it, so a change lands where the server would put it.
// Reloads are spaced and never overlap, however fast changes come.
let refreshTimer = 0;
let refreshing = false;
let refreshAgain = false;

function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = 0;
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    try {
      do {
        refreshAgain = false;
        await loadList();
      } while (refreshAgain);
    } finally {
      refreshing = false;
    }
  }, 100);
}

function describeQuery() {
  const q = state.query;
  const parts = [];
  if (q.namePrefix) parts.push(`names starting with “${q.namePrefix}”`);
  if (q.city) parts.push(`in ${q.city}`);
  if (q.hobby) parts.push(`who like ${q.hobby}`);
  return parts.join(', ');
}

function renderList() {
  const list = $('people');
  const byName = new Map([...list.children].map((li) => [li.dataset.name, li]));
  const now = Date.now();
  state.people.forEach((p, i) => {
    let li = byName.get(p.name);
    if (li) byName.delete(p.name);
    else li = newRow(p.name);
    fillRow(li, p, now - (state.changed.get(p.name) ?? 0) < 2000);
    // Move a row only when it is out of place, so a focused link keeps
    // its focus while the list changes around it.
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
  for (const li of byName.values()) li.remove();

  const summary = $('list-summary');
  summary.classList.toggle('error', state.listError !== '');
  const filter = describeQuery();
  if (state.listError) summary.textContent = state.listError;
  else if (state.people.length === 0) summary.textContent = filter ? `No one matches: ${filter}.` : 'The directory is empty.';
  else {
    const n = state.people.length;
    summary.textContent = `${n} ${n === 1 ? 'person' : 'people'} on page ${state.page + 1}${filter ? `: ${filter}` : ''}.`;
  }
  $('page-label').textContent = `Page ${state.page + 1}`;
  const prev = $('prev-page');
  const next = $('next-page');
  const focused = [prev, next].find((b) => b === document.activeElement);
  prev.disabled = state.page === 0;
  next.disabled = !state.nextPageToken;
  // A button that is disabled while focused would drop keyboard focus to
  // the top of the page.
  if (focused?.disabled) ([prev, next].find((b) => !b.disabled) ?? $('people-heading')).focus();
}

function newRow(name) {
  const li = document.createElement('li');
  li.dataset.name = name;
  const link = document.createElement('a');
  link.className = 'name';
  link.href = personHash(name);
  link.textContent = name;
  const meta = document.createElement('span');
  meta.className = 'meta';
  const hobbies = document.createElement('span');
  hobbies.className = 'hobbies';
  li.append(link, meta, hobbies);
  return li;
}

function fillRow(li, p, changed) {
  const [, meta, hobbies] = li.children;
  const bits = [`age ${p.age}`];
  if (p.address.city) bits.push(p.address.city);
  setText(meta, bits.join(' · '));
  setText(hobbies, p.hobbies.join(', '));
  li.classList.toggle('changed', changed);
  li.classList.toggle('selected', state.selected?.name === p.name);
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// ---- searching and paging ----

let searchTimer = 0;

function readQuery() {
  return {
    namePrefix: $('q-name').value.trim() === '' ? '' : $('q-name').value.trimStart(),
    city: $('q-city').value.trim(),
    hobby: $('q-hobby').value.trim(),
    pageSize: Number($('q-size').value) || 25,
  };
}

function applyQuery() {
  clearTimeout(searchTimer);
  const q = readQuery();
  const same = Object.keys(q).every((k) => q[k] === state.query[k]);
  if (same) return;
  state.query = q;
  state.pageTokens = [''];
  state.page = 0;
  loadList();
}

function setupSearch() {
  const form = $('search');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    applyQuery();
  });
  form.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(applyQuery, 250);
  });
  $('q-size').addEventListener('change', applyQuery);
  form.addEventListener('reset', () => setTimeout(applyQuery, 0));
  $('next-page').addEventListener('click', () => {
    if (!state.nextPageToken) return;
    state.pageTokens[state.page + 1] = state.nextPageToken;
    state.pageTokens.length = state.page + 2;
    state.page++;
    loadList();
  });
  $('prev-page').addEventListener('click', () => {
    if (state.page === 0) return;
    state.page--;
    loadList();
  });
}

// ---- one person ----

let detailAbort = null;

async function openPerson(name, { focus = true } = {}) {
  detailAbort?.abort();
  const abort = new AbortController();
  detailAbort = abort;
  if (state.selected?.name !== name) {
    // Edit and Delete wait for the person: an edit begun from a blank
    // form would compare against the wrong values.
    showDetail(normalize({ name }), 'Loading…', { missing: true });
  }
  if (focus) $('detail-heading').focus();
  let shown;
  try {
    shown = [normalize(await api.getPerson(name, abort.signal)), ''];
  } catch (err) {
    if (err.name === 'AbortError') return;
    const p = normalize({ name });
    if (needsToken(err)) shown = [p, 'Enter an access token to see this person.', { missing: true }];
    else if (err.status === 404) shown = [p, `${name} is not in the directory.`, { missing: true }];
    else shown = [p, `${name} could not be loaded: ${err.message}`, { missing: true }];
  }
  if (detailAbort !== abort) return;
  // A form opened meanwhile stays open; the person shows when it closes.
  if (state.editing) remember(...shown);
  else showDetail(...shown);
}

// remember keeps what the detail panel shows, to show it again.
function remember(p, note, { missing = false } = {}) {
  state.selected = p;
  state.detailNote = note;
  state.detailMissing = missing;
}

function showDetail(p, note, { missing = false } = {}) {
  remember(p, note, { missing });
  closeEditor({ restoreFocus: false });
  $('detail').hidden = false;
  $('detail-heading').textContent = p.name;
  $('detail-note').textContent = note;
  $('detail-fields').hidden = missing;
  $('edit-button').disabled = missing;
  $('delete-button').disabled = missing;
  hideConfirm();
  const values = {
    age: String(p.age),
    gender: genders[p.gender] ?? p.gender,
    hobbies: p.hobbies.length ? p.hobbies.join(', ') : 'None',
    street: p.address.street || '—',
    city: p.address.city || '—',
  };
  for (const dd of $('detail-fields').querySelectorAll('dd')) dd.textContent = values[dd.dataset.field];
  document.title = `${p.name} – RouteGuide directory`;
  for (const li of $('people').children) li.classList.toggle('selected', li.dataset.name === p.name);
}

function closeDetail() {
  detailAbort?.abort();
  state.selected = null;
  $('detail').hidden = true;
  document.title = 'RouteGuide directory';
  for (const li of $('people').children) li.classList.remove('selected');
}

function onHashChange() {
  const name = hashName();
  if (name === null) {
    closeDetail();
    return;
  }
  openPerson(name);
}

function leavePerson() {
  const name = state.selected?.name;
  if (location.hash) history.pushState(null, '', location.pathname + location.search);
  closeDetail();
  const link = name && [...$('people').children].find((li) => li.dataset.name === name)?.firstElementChild;
  (link ?? $('people-heading')).focus();
}

function hideConfirm() {
  $('confirm-delete').hidden = true;
  $('detail-actions').hidden = false;
}

function setupDetail() {
  window.addEventListener('hashchange', onHashChange);
  $('close-detail').addEventListener('click', leavePerson);
  $('edit-button').addEventListener('click', () => openEditor({ mode: 'edit', person: state.selected }));
  $('delete-button').addEventListener('click', () => {
    const name = state.selected.name;
    $('confirm-text').textContent = `Delete ${name}? This cannot be undone.`;
    $('confirm-yes').textContent = `Delete ${name}`;
    $('detail-actions').hidden = true;
    $('confirm-delete').hidden = false;
    $('confirm-no').focus();
  });
  $('confirm-no').addEventListener('click', () => {
    hideConfirm();
    $('delete-button').focus();
  });
  $('confirm-yes').addEventListener('click', async () => {
    const name = state.selected.name;
    $('confirm-yes').disabled = true;
    try {
      await api.deletePerson(name);
      say(`Deleted ${name}.`);
      leavePerson();
      scheduleRefresh();
    } catch (err) {
      hideConfirm();
      $('delete-button').focus();
      // A token prompt, when there is one, takes the focus from here.
      if (needsToken(err)) $('detail-note').textContent = 'Deleting needs an access token.';
      else if (err.status === 403) readOnly((text) => { $('detail-note').textContent = text; });
      else if (err.status === 404) $('detail-note').textContent = `${name} was already deleted.`;
      else $('detail-note').textContent = `${name} could not be deleted: ${err.message}`;
    } finally {
      $('confirm-yes').disabled = false;
    }
  });
}

// ---- adding and editing ----

function openEditor(editing) {
  state.editing = editing;
  state.returnFocus = document.activeElement;
  const form = $('editor');
  form.reset();
  clearErrors();
  $('editor-note').textContent = '';
  const p = editing.mode === 'edit' ? editing.person : normalize({});
  $('editor-heading').textContent = editing.mode === 'edit' ? `Edit ${p.name}` : 'Add a person';
  $('f-name').value = p.name;
  $('f-name').readOnly = editing.mode === 'edit';
  $('f-age').value = editing.mode === 'edit' ? String(p.age) : '';
  $('f-gender').value = p.gender in genders ? p.gender : 'UNKNOWN';
  $('f-hobbies').value = p.hobbies.join('\n');
  $('f-street').value = p.address.street;
  $('f-city').value = p.address.city;
  $('save-button').textContent = editing.mode === 'edit' ? 'Save changes' : 'Add';
  $('detail').hidden = true;
  form.hidden = false;
  (editing.mode === 'edit' ? $('f-age') : $('f-name')).focus();
}

function closeEditor({ restoreFocus = true } = {}) {
  if (!state.editing) return;
  state.editing = null;
  $('editor').hidden = true;
  if (restoreFocus) {
    if (state.selected) showDetail(state.selected, state.detailNote, { missing: state.detailMissing });
    const back = state.returnFocus;
    if (back && back.isConnected && !back.closest('[hidden]')) back.focus();
    else $('people-heading').focus();
  }
  state.returnFocus = null;
}

function clearErrors() {
  $('editor-error').textContent = '';
  for (const f of fields) {
    $(f.id).removeAttribute('aria-invalid');
    $(`${f.id}-error`).textContent = '';
  }
}

// showErrors puts each violation beside its field; those of no field go
// above the form. It focuses the first field at fault.
function showErrors(violations, message) {
  clearErrors();
  const loose = [];
  let first = null;
  for (const v of violations) {
    // "hobbies[2]" is the hobbies field; a server may name the request's
    // person too ("person.age").
    const path = v.field.replace(/^person\./, '').replace(/\[\d+\]/g, '');
    const f = fields.find((x) => x.path === path);
    if (!f) {
      loose.push(v.field ? `${v.field}: ${v.description}` : v.description);
      continue;
    }
    const input = $(f.id);
    const out = $(`${f.id}-error`);
    out.textContent = out.textContent ? `${out.textContent} ${v.description}` : v.description;
    input.setAttribute('aria-invalid', 'true');
    first ??= input;
  }
  const summary = [];
  if (violations.length - loose.length > 0) summary.push('Please correct the fields marked below.');
  if (message && violations.length === 0) summary.push(message);
  summary.push(...loose);
  $('editor-error').textContent = summary.join(' ');
  (first ?? $('editor-heading')).focus();
}

// readForm returns the person in the form, or the violations found before
// asking the server (an age that is not a whole number).
function readForm() {
  const age = $('f-age');
  const violations = [];
  let ageValue = 0;
  if (age.validity.badInput || (age.value !== '' && !/^\d+$/.test(age.value.trim()))) {
    violations.push({ field: 'age', description: 'Enter the age as a whole number of years.' });
  } else if (age.value !== '') {
    ageValue = Number(age.value);
  }
  const person = {
    name: $('f-name').value,
    age: ageValue,
    gender: $('f-gender').value,
    hobbies: $('f-hobbies').value.split('\n').map((h) => h.trim()).filter((h) => h !== ''),
    address: { street: $('f-street').value, city: $('f-city').value },
  };
  return { person, violations };
}

// changedPaths returns the update mask: the fields the form changed.
function changedPaths(before, after) {
  const paths = [];
  if (before.age !== after.age) paths.push('age');
  if (before.gender !== after.gender) paths.push('gender');
  if (before.hobbies.join('\n') !== after.hobbies.join('\n')) paths.push('hobbies');
  if (before.address.street !== after.address.street) paths.push('address.street');
  if (before.address.city !== after.address.city) paths.push('address.city');
  return paths;
}

async function save(ev) {
  ev.preventDefault();
  if (state.saving) return;
  const editing = state.editing;
  const { person, violations } = readForm();
  if (violations.length) {
    showErrors(violations);
    return;
  }
  state.saving = true;
  $('save-button').disabled = true;
  try {
    let stored;
    if (editing.mode === 'add') {
      stored = normalize(await api.addPerson(person));
      say(`Added ${stored.name}.`);
    } else {
      const mask = changedPaths(editing.person, person);
      if (mask.length === 0) {
        closeEditor();
        say('Nothing was changed.');
        return;
      }
      stored = normalize(await api.updatePerson(editing.person.name, person, mask));
      say(`Saved ${stored.name}.`);
    }
    state.editing = null;
    $('editor').hidden = true;
    showDetail(stored, '');
    if (hashName() !== stored.name) history.pushState(null, '', personHash(stored.name));
    $('detail-heading').focus();
    scheduleRefresh();
  } catch (err) {
    if (needsToken(err)) showErrors([], 'Saving needs an access token: enter it above, then save again.');
    else if (err.status === 403) readOnly((text) => showErrors([], text));
    else if (err.status === 409) showErrors([{ field: 'name', description: `${person.name.trim()} is already in the directory.` }]);
    else if (err.status === 404 && editing.mode === 'edit') showErrors([], `${editing.person.name} is no longer in the directory.`);
    else showErrors(err.violations ?? [], err.message);
  } finally {
    state.saving = false;
    $('save-button').disabled = false;
  }
}

function setupEditor() {
  $('add-button').addEventListener('click', () => openEditor({ mode: 'add' }));
  $('editor').addEventListener('submit', save);
  $('cancel-edit').addEventListener('click', () => closeEditor());
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    if (state.editing) closeEditor();
    else if (!$('confirm-delete').hidden) $('confirm-no').click();
    else if (state.selected && $('detail').contains(document.activeElement)) leavePerson();
  });
}

// ---- the watch feed ----

const connText = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  token: 'waiting for an access token',
};

function onChange(type, person) {
  const p = normalize(person);
  state.changed.set(p.name, Date.now());
  setTimeout(() => {
    if (Date.now() - (state.changed.get(p.name) ?? 0) >= 2000) {
      state.changed.delete(p.name);
      const li = [...$('people').children].find((x) => x.dataset.name === p.name);
      li?.classList.remove('changed');
    }
  }, 2100);
  scheduleRefresh();
  if (state.saving) return; // the change is this page's own
  if (state.selected?.name === p.name && !state.editing) {
    if (type === 'deleted') {
      showDetail(state.selected, `${p.name} was deleted just now.`, { missing: true });
    } else {
      showDetail(p, `${p.name} was changed just now.`);
    }
  }
  if (state.editing?.mode === 'edit' && state.editing.person.name === p.name) {
    $('editor-note').textContent = type === 'deleted'
      ? `${p.name} was deleted just now; saving will fail.`
      : `${p.name} was changed just now; saving changes only the fields you edit.`;
  }
}

const feed = new Feed({
  onState(s) {
    $('conn').dataset.state = s;
    setText($('conn-text'), connText[s] ?? s);
    if (s === 'token') askForToken(api.token() ? 'The server did not accept this token. Enter another.' : 'This server needs an access token.');
  },
  onOpen(resumed) {
    // A feed that starts afresh may have missed changes: load the list.
    if (!resumed) scheduleRefresh();
    const name = hashName();
    if (!resumed && name && state.selected?.name === name && !state.editing) openPerson(name, { focus: false });
  },
  onChange,
  onReset() {
    scheduleRefresh();
  },
});

setupToken();
setupSearch();
setupDetail();
setupEditor();
state.query = readQuery();
feed.start();
loadList();
if (hashName() !== null) openPerson(hashName(), { focus: false });
