// The shopper's page: a query (a photo, a product to look like, words), filters fed by the
// facet counts, and a results grid with the per-signal "why" of every result. With no query
// at all the grid shows the catalogue, so any product can be picked for "more like this".
//
// One request is in flight at a time: a new search aborts the one before, so a slow answer
// can never overwrite a newer one.
import * as api from './api.js';
import { h, capitalise } from './dom.js';

const PAGE = 24;
const IMAGE_MAX = 32 * 1024 * 1024; // the server's cap on one photo
const PALETTE = ['black', 'white', 'grey', 'red', 'orange', 'yellow', 'green', 'blue', 'navy', 'purple',
  'pink', 'brown', 'beige'];
const SIZES = ['xxs', 'xs', 's', 'm', 'l', 'xl', 'xxl', 'xxxl'];
const SIGNALS = {
  image: { name: 'Photo', score: 'similarity' },
  product: { name: 'Like product', score: 'similarity' },
  text: { name: 'Words', score: 'BM25' },
  filters: { name: 'Filters', score: null },
};

const $ = (id) => document.getElementById(id);

const state = {
  coll: 'products',
  photo: null, // the File searched by
  photoUrl: null, // its blob: preview URL, revoked when replaced
  like: null, // {id, title} of the product searched "more like"
  offset: 0, // search paging
  cursor: null, // catalogue paging
  shown: 0,
  ctrl: null, // AbortController of the request in flight
  focusResults: false, // move focus to the results once they are in (the control that asked is gone)
};

// ---- query ------------------------------------------------------------------------------

function checkedValues(containerId) {
  return [...$(containerId).querySelectorAll('input:checked')].map((i) => i.value);
}

function priceField(id, what) {
  const input = $(id);
  if (!input.validity.valid) throw new Error(`${what} price must be a number of at least 0`);
  return input.value === '' ? null : Number(input.value);
}

function readFilters() {
  const f = {};
  if ($('f-category').value) f.category = $('f-category').value;
  if ($('f-brand').value) f.brand = $('f-brand').value;
  const colours = checkedValues('f-colour');
  if (colours.length) f.colour = colours;
  const sizes = checkedValues('f-size');
  if (sizes.length) f.size = sizes;
  const min = priceField('f-price-min', 'The minimum');
  const max = priceField('f-price-max', 'The maximum');
  if (min !== null && max !== null && min > max) throw new Error('the minimum price is above the maximum');
  if (min !== null) f.price_min = min;
  if (max !== null) f.price_max = max;
  return f;
}

// The search JSON for what the form holds now (throws on a bad price).
function currentQuery() {
  const q = {};
  const text = $('words').value.trim();
  if (text) q.text = text;
  if (state.like) q.product_id = state.like.id;
  const filters = readFilters();
  if (Object.keys(filters).length) q.filters = filters;
  return q;
}

const isEmpty = (q) => !state.photo && !q.text && !q.product_id && !q.filters;

// ---- running a search -------------------------------------------------------------------

async function run(append = false) {
  let q;
  try {
    q = currentQuery();
  } catch (e) {
    showError(`Check the filters: ${e.message}.`);
    return;
  }
  if (!append) {
    state.offset = 0;
    state.cursor = null;
  }
  if (state.ctrl) state.ctrl.abort();
  const ctrl = new AbortController();
  state.ctrl = ctrl;
  const browsing = isEmpty(q);
  setBusy(true, browsing);
  try {
    if (browsing) await browsePage(append, ctrl.signal);
    else await searchPage(q, append, ctrl.signal);
    hideError();
  } catch (e) {
    if (e.name === 'AbortError') return;
    showError(browsing ? `Could not load the catalogue: ${e.message}.` : `Could not search: ${e.message}.`);
    if (e.code === 'not_an_image' || e.code === 'missing_image') dropPhoto(); // keep no unusable photo
    if (!append) {
      $('grid').replaceChildren();
      $('more').hidden = true;
      $('status').textContent = browsing ? 'The catalogue could not be loaded.' : 'The search failed.';
    }
  } finally {
    if (state.ctrl === ctrl) {
      state.ctrl = null;
      setBusy(false, browsing);
      if (state.focusResults) $('results-title').focus();
      state.focusResults = false;
    }
  }
}

async function searchPage(q, append, signal) {
  const ans = await api.search(state.coll, { ...q, k: PAGE, offset: state.offset }, state.photo, signal);
  const items = ans.results.map((r) => ({ product: r.product || { id: r.id }, score: r.score, why: r.why }));
  render(items, append);
  state.offset += PAGE;
  $('results-title').textContent = 'Results';
  $('status').textContent = state.shown === 0 ? 'Nothing matches; try fewer filters or other words.'
    : `Showing ${state.shown} of the ${ans.total} best ${ans.total === 1 ? 'match' : 'matches'} · ${Math.round(ans.took_ms)} ms`;
  $('more').hidden = !(ans.results.length > 0 && state.offset < ans.total);
}

async function browsePage(append, signal) {
  const ans = await api.listProducts(state.coll, { limit: PAGE, cursor: state.cursor }, signal);
  render(ans.items.map((p) => ({ product: p })), append);
  state.cursor = ans.next_cursor;
  $('results-title').textContent = 'Catalogue';
  $('status').textContent = state.shown === 0 ? 'The catalogue is empty: ingest some products first.'
    : `${state.shown} of ${ans.total} products · pick one for "more like this", or search above`;
  $('more').hidden = !ans.next_cursor;
}

function setBusy(busy, browsing) {
  $('grid').setAttribute('aria-busy', String(busy));
  document.body.classList.toggle('busy', busy);
  $('more').disabled = busy;
  if (busy) $('status').textContent = browsing ? 'Loading the catalogue…' : 'Searching…';
  $('reset').hidden = browsing;
}

function showError(message) {
  const box = $('error');
  box.replaceChildren(h('strong', {}, 'Something went wrong. '), capitalise(message));
  box.hidden = false;
}

function hideError() {
  $('error').hidden = true;
  $('error').replaceChildren();
}

// ---- results ----------------------------------------------------------------------------

function formatPrice(p) {
  if (typeof p.price !== 'number') return null;
  if (p.currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: p.currency }).format(p.price);
    } catch {
      // an unknown currency code: fall through to the bare number with its code
    }
  }
  return new Intl.NumberFormat().format(p.price) + (p.currency ? ` ${p.currency}` : '');
}

const titleOf = (p) => p.title || p.id;

function whyScore(signal, w) {
  const meta = SIGNALS[signal];
  return meta && meta.score ? `${meta.score} ${w.score.toFixed(2)}` : 'passes';
}

function whyChips(why) {
  const entries = Object.entries(why || {});
  if (!entries.length) return null;
  return h('ul', { class: 'why', 'aria-label': 'Why this result' },
    entries.map(([signal, w]) => h('li', { class: `why-${signal}`, title: `${whyScore(signal, w)}` },
      h('span', { class: 'why-name' }, (SIGNALS[signal] || { name: signal }).name),
      ` #${w.rank}`,
      signal === 'filters' ? null : h('span', { class: 'why-score' }, ` ${w.score.toFixed(2)}`))));
}

function card(item) {
  const p = item.product;
  const title = titleOf(p);
  const details = h('button', { type: 'button', class: 'details-btn' }, 'Details',
    h('span', { class: 'visually-hidden' }, `: ${title}`));
  const open = () => openDetail(item, details);
  details.addEventListener('click', open);
  const price = formatPrice(p);
  const meta = [p.category, p.brand].filter(Boolean).map(capitalise).join(' · ');
  return h('li', { class: 'card', dataset: { id: p.id } },
    h('img', {
      class: 'card-photo', src: api.imageUrl(state.coll, p.id), alt: '', loading: 'lazy', width: 300,
      height: 400, onclick: open,
    }),
    h('div', { class: 'card-body' },
      h('h3', { class: 'card-title' }, title),
      meta ? h('p', { class: 'card-meta' }, meta) : null,
      price ? h('p', { class: 'price' }, price) : null,
      whyChips(item.why),
      h('div', { class: 'card-actions' },
        h('button', { type: 'button', class: 'like-btn', onclick: () => searchLike(p) }, 'More like this',
          h('span', { class: 'visually-hidden' }, `: ${title}`)),
        details)));
}

function render(items, append) {
  const grid = $('grid');
  const cards = items.map(card);
  if (append) grid.append(...cards);
  else grid.replaceChildren(...cards);
  state.shown = grid.children.length;
}

// ---- detail view ------------------------------------------------------------------------

function props(p) {
  const rows = [];
  const add = (label, value) => {
    if (value !== undefined && value !== null && value !== '' && !(Array.isArray(value) && !value.length))
      rows.push(h('div', {}, h('dt', {}, label), h('dd', {}, Array.isArray(value) ? value.join(', ') : String(value))));
  };
  add('Price', formatPrice(p));
  add('Category', p.category);
  add('Brand', p.brand);
  add('Colours', p.colours);
  add('Colours in the photo', p.dominant_colours);
  add('Sizes', p.sizes);
  for (const [k, v] of Object.entries(p.attributes || {})) add(capitalise(k), v);
  add('Product id', p.id);
  if (p.created_at) add('Added', new Date(p.created_at).toLocaleDateString());
  return h('dl', { class: 'props' }, rows);
}

function whyTable(item) {
  const entries = Object.entries(item.why || {});
  if (!entries.length) return null;
  return h('table', { class: 'why-table' },
    h('caption', {}, 'Why this result'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Signal'), h('th', { scope: 'col' }, 'Rank'),
      h('th', { scope: 'col' }, 'Score'))),
    h('tbody', {}, entries.map(([signal, w]) => h('tr', {},
      h('th', { scope: 'row' }, (SIGNALS[signal] || { name: signal }).name),
      h('td', {}, String(w.rank)),
      h('td', {}, whyScore(signal, w))))),
    h('tfoot', {}, h('tr', {}, h('th', { scope: 'row' }, 'Fused'), h('td', {}),
      h('td', { title: 'reciprocal rank fusion: the sum of weight / (60 + rank) over the signals' },
        item.score.toFixed(4)))));
}

function openDetail(item, opener) {
  const p = item.product;
  const dialog = $('detail');
  const close = h('button', { type: 'button', class: 'close', onclick: () => dialog.close() }, 'Close');
  const actions = [h('button', { type: 'button', class: 'primary', onclick: () => { dialog.close(); searchLike(p); } },
    'More like this')];
  if (p.category)
    actions.push(h('button', {
      type: 'button', onclick: () => { dialog.close(); searchLike(p, p.category); },
    }, `More like this in ${capitalise(p.category)}`));
  dialog.replaceChildren(h('article', { class: 'detail' },
    h('img', { class: 'detail-photo', src: api.imageUrl(state.coll, p.id), alt: titleOf(p) }),
    h('div', { class: 'detail-info' },
      h('h2', { id: 'detail-title' }, titleOf(p)),
      p.description ? h('p', { class: 'description' }, p.description) : null,
      props(p),
      whyTable(item),
      h('div', { class: 'detail-actions' }, actions, close))));
  dialog.addEventListener('close', () => { if (opener.isConnected) opener.focus(); }, { once: true });
  dialog.showModal();
  close.focus();
}

// ---- the query's parts ------------------------------------------------------------------

function searchLike(p, category) {
  state.like = { id: p.id, title: titleOf(p) };
  dropPhoto();
  $('words').value = '';
  if (category !== undefined) selectOption($('f-category'), category);
  showLike();
  state.focusResults = true;
  window.scrollTo({ top: 0 });
  run();
}

function showLike() {
  $('like').hidden = !state.like;
  if (!state.like) return;
  $('like-title').textContent = state.like.title;
  $('like-photo').src = api.imageUrl(state.coll, state.like.id);
}

function setPhoto(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith('image/')) {
    showError(`"${file.name}" is not a photo: choose a JPEG, PNG, WebP, GIF or TIFF image.`);
    return;
  }
  if (file.size > IMAGE_MAX) {
    showError(`"${file.name}" is too large: photos may be at most 32 MiB.`);
    return;
  }
  dropPhoto();
  state.photo = file;
  state.photoUrl = URL.createObjectURL(file);
  const preview = $('photo-preview');
  preview.src = state.photoUrl;
  preview.alt = `Your photo: ${file.name || 'pasted image'}`;
  preview.hidden = false;
  $('drop-hint').textContent = 'Searching by this photo. Drop or paste another, or';
  $('clear-photo').hidden = false;
  state.like = null;
  showLike();
  run();
}

// Forgets the photo without searching (the caller runs the next search).
function dropPhoto() {
  if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
  state.photo = null;
  state.photoUrl = null;
  $('photo').value = '';
  $('photo-preview').hidden = true;
  $('photo-preview').removeAttribute('src');
  $('drop-hint').textContent = 'Drop a photo here, paste one, or';
  $('clear-photo').hidden = true;
}

function wireDropAndPaste() {
  const drop = $('drop');
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  // The whole window takes a dropped photo: a near miss must not navigate away to the file.
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    drop.classList.add('dragging');
  });
  document.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) drop.classList.remove('dragging');
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    drop.classList.remove('dragging');
    setPhoto(e.dataTransfer.files[0]);
  });
  document.addEventListener('paste', (e) => {
    const file = [...(e.clipboardData ? e.clipboardData.files : [])].find((f) => f.type.startsWith('image/'));
    if (!file) return; // plain text pastes into the words box as usual
    e.preventDefault();
    setPhoto(file);
  });
}

// ---- filters ----------------------------------------------------------------------------

function selectOption(select, value) {
  if (![...select.options].some((o) => o.value === value))
    select.append(h('option', { value }, capitalise(value)));
  select.value = value;
}

function fillSelect(select, counts, anyLabel) {
  const names = Object.keys(counts).sort((a, b) => a.localeCompare(b));
  select.replaceChildren(h('option', { value: '' }, anyLabel),
    ...names.map((n) => h('option', { value: n }, `${capitalise(n)} (${counts[n]})`)));
  return names.length;
}

function sizeOrder(a, b) {
  const ia = SIZES.indexOf(a), ib = SIZES.indexOf(b);
  if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  const na = Number(a), nb = Number(b);
  if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
  return a.localeCompare(b);
}

function checkbox(name, count, cls) {
  return h('label', { class: cls },
    h('input', { type: 'checkbox', value: name, onchange: () => run() }),
    cls.startsWith('swatch') ? h('span', { class: 'dot', 'aria-hidden': 'true' }) : null,
    h('span', { class: 'chip-name' }, cls.startsWith('swatch') ? capitalise(name) : name.toUpperCase()),
    h('span', { class: 'count' }, `(${count})`));
}

async function loadFacets() {
  const f = await api.facets(state.coll);
  fillSelect($('f-category'), f.category, 'Any category');
  $('f-brand-wrap').hidden = fillSelect($('f-brand'), f.brand, 'Any brand') === 0;
  const colours = PALETTE.filter((c) => f.colour[c]);
  $('f-colour').replaceChildren(...colours.map((c) => checkbox(c, f.colour[c], `swatch sw-${c}`)));
  $('f-colour-wrap').hidden = colours.length === 0;
  const sizes = Object.keys(f.size).sort(sizeOrder);
  $('f-size').replaceChildren(...sizes.map((s) => checkbox(s, f.size[s], 'chip')));
  $('f-size-wrap').hidden = sizes.length === 0;
  $('f-price-wrap').hidden = !f.price;
  if (f.price) {
    $('f-price-min').placeholder = String(Math.floor(f.price.min));
    $('f-price-max').placeholder = String(Math.ceil(f.price.max));
  }
}

function clearFilters() {
  $('f-category').value = '';
  $('f-brand').value = '';
  for (const box of document.querySelectorAll('.filters input[type=checkbox]')) box.checked = false;
  $('f-price-min').value = '';
  $('f-price-max').value = '';
}

async function loadCollections() {
  const { collections } = await api.listCollections();
  const select = $('collection');
  select.replaceChildren(...collections.map((c) => h('option', { value: c.name }, `${c.name} (${c.count})`)));
  if (!collections.some((c) => c.name === state.coll) && collections.length) state.coll = collections[0].name;
  select.value = state.coll;
  $('collection-wrap').hidden = collections.length < 2;
}

function startOver() {
  state.like = null;
  showLike();
  dropPhoto();
  $('words').value = '';
  clearFilters();
  state.focusResults = true;
  run();
}

// ---- start ------------------------------------------------------------------------------

async function loadCatalogueInfo() {
  try {
    await loadCollections();
    await loadFacets();
  } catch (e) {
    showError(`Could not load the catalogue's filters: ${e.message}.`);
  }
}

async function main() {
  if (window.matchMedia('(max-width: 720px)').matches) $('filters').open = false;
  $('query').addEventListener('submit', (e) => {
    e.preventDefault();
    run();
  });
  $('choose-photo').addEventListener('click', () => $('photo').click());
  $('photo').addEventListener('change', () => setPhoto($('photo').files[0]));
  $('clear-photo').addEventListener('click', () => {
    dropPhoto();
    $('choose-photo').focus();
    run();
  });
  $('clear-like').addEventListener('click', () => {
    state.like = null;
    showLike();
    $('words').focus();
    run();
  });
  for (const id of ['f-category', 'f-brand', 'f-price-min', 'f-price-max'])
    $(id).addEventListener('change', () => run());
  $('clear-filters').addEventListener('click', () => {
    clearFilters();
    run();
  });
  $('reset').addEventListener('click', startOver);
  $('more').addEventListener('click', () => run(true));
  $('collection').addEventListener('change', async () => {
    state.coll = $('collection').value;
    clearFilters();
    setBusy(true, true); // until the new collection's first page is in
    await loadFacets().catch((e) => showError(`Could not load the catalogue's filters: ${e.message}.`));
    startOver();
  });
  $('detail').addEventListener('click', (e) => {
    if (e.target === $('detail')) $('detail').close(); // a click on the backdrop
  });
  wireDropAndPaste();
  await loadCatalogueInfo();
  await run();
}

main();
