// Drives lookalike's web page in headless Debian chromium (playwright-core, no bundled
// browser). Started by tests/e2e/ui.sh, which ingests the catalogue, starts the server and
// passes, in the environment:
//   BASE_URL       the server, e.g. http://127.0.0.1:41234
//   QUERY_PHOTO    a photo that is in the catalogue, QUERY_ID its product id (a hat)
//   DRESS_PHOTO    the same for a dress, DRESS_ID its id
//   BROKEN_PHOTO   a .jpg file that holds text; NOT_A_PHOTO a .txt file
//   OUT            where screenshots go; PROFILE_DIR a fresh browser profile directory
// Each test gets a fresh page; a failing test leaves OUT/fail-<n>.png. Prints one line per
// test and exits non-zero when any failed.
import { readFileSync } from 'node:fs';
import { strict as assert } from 'node:assert';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run tests/e2e/ui.sh)`);
  return v;
};
const BASE = env('BASE_URL');
const OUT = env('OUT');
const QUERY_ID = env('QUERY_ID');
const QUERY_PHOTO = env('QUERY_PHOTO');
const CATALOGUE = 31;
const PAGE = 24;
const TIMEOUT = 30000; // photo searches run a CNN on a shared 2-core machine, sanitized builds too

const context = await chromium.launchPersistentContext(env('PROFILE_DIR'), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 860 },
  locale: 'en-US',
});
context.setDefaultTimeout(TIMEOUT);

// A page on the UI with everything it asks for checked: no request leaves BASE, no script
// error. `problems` collects what went wrong, checked after each test.
async function open(t, { width = 1280, height = 860 } = {}) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(BASE + '/') && !u.startsWith('blob:') && !u.startsWith('data:'))
      t.problems.push(`request outside the server: ${u}`);
  });
  page.on('pageerror', (e) => t.problems.push(`script error: ${e.message}`));
  page.on('console', (m) => {
    // Failed fetches (the 400s some tests provoke) log "Failed to load resource"; anything else is ours.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
      t.problems.push(`console error: ${m.text()}`);
  });
  t.pages.push(page);
  await page.goto(BASE + '/');
  await idle(page);
  return page;
}

// Waits until no search or listing is in flight.
const idle = (page) => page.waitForFunction(() => document.getElementById('grid').getAttribute('aria-busy') === 'false'
  && document.querySelector('#status').textContent !== '');

const cardIds = (page) => page.$$eval('#grid > li.card', (cards) => cards.map((c) => c.dataset.id));

async function api(path, body) {
  const res = await fetch(BASE + path, body ? {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  } : {});
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

async function choosePhoto(page, file) {
  await page.setInputFiles('#photo', file);
  await idle(page);
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

// ---------------------------------------------------------------------------------------

test('the page opens on the catalogue with its facets', async (t) => {
  const page = await open(t);
  assert.equal(await page.title(), 'lookalike: find similar products');
  assert.equal((await cardIds(page)).length, PAGE);
  assert.match(await page.textContent('#status'), new RegExp(`${PAGE} of ${CATALOGUE} products`));
  assert.equal(await page.textContent('#results-title'), 'Catalogue');
  const facets = await api('/api/facets');
  const categories = await page.$$eval('#f-category option', (os) => os.map((o) => o.value));
  assert.deepEqual(categories, ['', ...Object.keys(facets.category).sort()]);
  assert.equal(categories.length, 11);
  assert.match(await page.textContent('#f-category option[value="shoes"]'), /^Shoes \(4\)$/);
  const colours = await page.$$eval('#f-colour input', (is) => is.map((i) => i.value));
  assert.deepEqual(new Set(colours), new Set(Object.keys(facets.colour)));
  assert.ok(colours.length > 0, 'the photos gave dominant colours');
  assert.deepEqual(await page.$$eval('#f-size .chip-name', (s) => s.map((e) => e.textContent)),
    ['S', 'M', 'L', 'XL', '39', '40', '41', '42']);
  assert.ok(await page.isVisible('#f-price-min'), 'the catalogue has prices, so the price range shows');
  assert.equal(await page.getAttribute('#f-price-max', 'placeholder'), String(Math.ceil(facets.price.max)));
  // "Show more" pages through the rest.
  await page.click('#more');
  await idle(page);
  assert.equal((await cardIds(page)).length, CATALOGUE);
  assert.ok(await page.isHidden('#more'));
});

test('uploading a photo finds that product first, with title, price and why', async (t) => {
  const page = await open(t);
  await choosePhoto(page, QUERY_PHOTO);
  assert.equal(await page.textContent('#results-title'), 'Results');
  const ids = await cardIds(page);
  assert.equal(ids[0], QUERY_ID);
  assert.equal(ids.length, PAGE);
  const first = page.locator('#grid > li.card').first();
  assert.match(await first.locator('.card-title').textContent(), /^Hat no\. \d$/);
  assert.match(await first.locator('.price').textContent(), /₫\s?[\d,.]+|[\d,.]+\s?₫/);
  assert.match(await first.locator('.why').textContent(), /Photo #1 (1\.00|0\.99)/);
  assert.ok(await page.isVisible('#photo-preview'), 'the chosen photo is previewed');
  assert.match(await page.textContent('#status'), /^Showing 24 of the \d+ best matches · \d+ ms$/);
  // Most of the nearest photos of a hat are hats: the search is real, not an echo.
  const top = await page.$$eval('#grid > li.card .card-meta', (m) => m.slice(0, 3).map((e) => e.textContent));
  assert.ok(top.filter((m) => m.startsWith('Hat')).length >= 2, `top 3: ${top}`);
});

test('a pasted photo and a dropped photo search too', async (t) => {
  const page = await open(t);
  const bytes = [...readFileSync(QUERY_PHOTO)];
  for (const kind of ['paste', 'drop']) {
    await page.evaluate(({ bytes, kind }) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'query.jpg', { type: 'image/jpeg' }));
      const target = kind === 'paste' ? document : document.getElementById('drop');
      const ev = kind === 'paste' ? new ClipboardEvent('paste', { clipboardData: dt, bubbles: true })
        : new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true });
      target.dispatchEvent(ev);
    }, { bytes, kind });
    await page.waitForFunction(() => !document.getElementById('photo-preview').hidden);
    await idle(page);
    assert.equal((await cardIds(page))[0], QUERY_ID, kind);
    await page.click('#clear-photo');
    await idle(page);
    assert.equal(await page.textContent('#results-title'), 'Catalogue', `${kind}: removing the photo`);
  }
});

test('"more like this" searches by the product and moves focus to the results', async (t) => {
  const page = await open(t);
  const picked = (await cardIds(page))[2];
  const title = await page.locator(`#grid > li.card[data-id="${picked}"] .card-title`).textContent();
  await page.locator(`#grid > li.card[data-id="${picked}"] .like-btn`).click();
  await idle(page);
  assert.ok(await page.isVisible('#like'));
  assert.equal(await page.textContent('#like-title'), title);
  const ids = await cardIds(page);
  assert.ok(ids.length > 0 && !ids.includes(picked), 'the product itself is not among its lookalikes');
  assert.match(await page.locator('#grid > li.card .why').first().textContent(), /Like product #1/);
  const want = await api(`/api/products/${picked}/similar?k=${PAGE}`);
  assert.deepEqual(ids, want.results.map((r) => r.id), 'the page shows what the API ranks');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'results-title');
  await page.click('#clear-like');
  await idle(page);
  assert.ok(await page.isHidden('#like'));
});

test('filters narrow the results: category, colour, size and price', async (t) => {
  const page = await open(t);
  await choosePhoto(page, QUERY_PHOTO);
  const all = (await cardIds(page)).length;
  await page.selectOption('#f-category', 'shoes');
  await idle(page);
  const metas = await page.$$eval('#grid > li.card .card-meta', (m) => m.map((e) => e.textContent));
  assert.equal(metas.length, 4);
  assert.ok(metas.every((m) => m.startsWith('Shoes')), metas.join('|'));
  assert.ok(metas.length < all);
  await page.selectOption('#f-category', '');
  await idle(page);

  // The rarest colour, so that every product of that colour fits on one page.
  const counts = (await api('/api/facets')).colour;
  const colour = Object.keys(counts).sort((a, b) => counts[a] - counts[b])[0];
  await page.check(`#f-colour input[value="${colour}"]`);
  await idle(page);
  const byColour = await cardIds(page);
  const want = await api('/api/search', { filters: { colour }, k: 100 });
  assert.deepEqual(new Set(byColour), new Set(want.results.map((r) => r.id)), `colour ${colour}`);
  for (const r of want.results)
    assert.ok([...(r.product.colours || []), ...(r.product.dominant_colours || [])].includes(colour));
  await page.click('#clear-filters');
  await idle(page);

  await page.check('#f-size input[value="xl"]');
  await idle(page);
  const xl = await cardIds(page);
  assert.ok(xl.length > 0 && xl.length < all);
  for (const id of xl) assert.deepEqual((await api(`/api/products/${id}`)).sizes, ['XL']);
  await page.click('#clear-filters');
  await idle(page);

  await page.fill('#f-price-max', '200000');
  await page.press('#f-price-max', 'Tab');
  await idle(page);
  const prices = await Promise.all((await cardIds(page)).map(async (id) => (await api(`/api/products/${id}`)).price));
  assert.ok(prices.length > 0 && prices.length < all);
  assert.ok(prices.every((p) => p <= 200000), prices.join(','));
  await page.fill('#f-price-min', '300000');
  await page.press('#f-price-min', 'Tab');
  assert.match(await page.textContent('#error'), /minimum price is above the maximum/);
});

test('words with Enter search the text, and the query combines with a photo', async (t) => {
  const page = await open(t);
  await page.fill('#words', 'shorts');
  await page.press('#words', 'Enter');
  await idle(page);
  const metas = await page.$$eval('#grid > li.card .card-meta', (m) => m.map((e) => e.textContent));
  assert.equal(metas.length, 3);
  assert.ok(metas.every((m) => m.startsWith('Shorts')));
  assert.match(await page.locator('#grid > li.card .why').first().textContent(), /Words #1/);
  // Accents do not matter: "sông hồng" and "song hong" find the same brand.
  await page.fill('#words', 'song hong');
  await page.press('#words', 'Enter');
  await idle(page);
  const plain = await cardIds(page);
  await page.fill('#words', 'sông hồng');
  await page.press('#words', 'Enter');
  await idle(page);
  assert.deepEqual(await cardIds(page), plain);
  assert.ok(plain.length >= 15);
  // Photo and words at once: both signals show in the why.
  await page.fill('#words', 'hat');
  await choosePhoto(page, QUERY_PHOTO);
  assert.ok((await cardIds(page)).slice(0, 3).includes(QUERY_ID));
  const why = await page.locator('#grid > li.card .why').first().textContent();
  assert.match(why, /Photo #1/);
  assert.match(why, /Words #\d/);
});

test('the detail view shows the product and closes with Escape, returning focus', async (t) => {
  const page = await open(t);
  await choosePhoto(page, QUERY_PHOTO);
  const details = page.locator('#grid > li.card').first().locator('.details-btn');
  await details.focus();
  await page.keyboard.press('Enter');
  await page.waitForSelector('#detail[open]');
  const text = await page.textContent('#detail');
  assert.match(await page.textContent('#detail-title'), /^Hat no\. \d$/);
  assert.match(text, /Category\s*hat/);
  assert.match(text, /Brand\s*(Sông Hồng|Mây Trắng)/);
  assert.match(text, new RegExp(`Product id\\s*${QUERY_ID}`));
  assert.match(await page.textContent('#detail .why-table'), /Photo\s*1\s*similarity (1\.00|0\.99)/);
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Close');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#detail:not([open])', { state: 'attached' });
  assert.equal(await page.evaluate(() => document.activeElement.classList.contains('details-btn')), true);
  // "More like this" from the detail view.
  await details.click();
  await page.waitForSelector('#detail[open]');
  await page.click('#detail .detail-actions button.primary');
  await idle(page);
  assert.ok(await page.isHidden('#detail[open]'));
  assert.equal(await page.textContent('#like-title'), await page.textContent('#detail-title'));
});

test('a file that is not a photo shows an error and the page goes on', async (t) => {
  const page = await open(t);
  await choosePhoto(page, env('BROKEN_PHOTO')); // a .jpg holding text: refused by the server
  assert.ok(await page.isVisible('#error'));
  assert.match(await page.textContent('#error'), /not a readable|not an image|image/i);
  assert.equal((await cardIds(page)).length, 0);
  assert.equal(await page.textContent('#status'), 'The search failed.');
  await choosePhoto(page, env('NOT_A_PHOTO')); // text/plain: refused before any upload
  assert.match(await page.textContent('#error'), /"notes\.txt" is not a photo/);
  await choosePhoto(page, QUERY_PHOTO);
  assert.ok(await page.isHidden('#error'), 'a good search clears the error');
  assert.equal((await cardIds(page))[0], QUERY_ID);
});

test('catalogue text is shown as text, never run as markup', async (t) => {
  const page = await open(t);
  await page.fill('#words', 'sneaky');
  await page.press('#words', 'Enter');
  await idle(page);
  assert.deepEqual(await cardIds(page), ['xss-1']);
  assert.equal(await page.textContent('#grid .card-title'),
    '<img src=x onerror="window.__pwned=1">Sneaky <b>bold</b> shoe');
  assert.equal(await page.$$eval('#grid img[src="x"], #grid b', (e) => e.length), 0);
  await page.click('#grid .details-btn');
  await page.waitForSelector('#detail[open]');
  assert.equal(await page.$$eval('#detail img[src="x"], #detail b', (e) => e.length), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
});

test('loading state: status and aria-busy while a search runs', async (t) => {
  const page = await open(t);
  let release;
  const gate = new Promise((r) => { release = r; });
  await page.route('**/search', async (route) => {
    await gate;
    await route.continue();
  });
  await page.fill('#words', 'dress');
  await page.press('#words', 'Enter');
  await page.waitForFunction(() => document.getElementById('grid').getAttribute('aria-busy') === 'true');
  assert.equal(await page.textContent('#status'), 'Searching…');
  assert.ok(await page.evaluate(() => document.body.classList.contains('busy')));
  release();
  await idle(page);
  assert.ok(await page.evaluate(() => !document.body.classList.contains('busy')));
  assert.equal((await cardIds(page)).length, 3);
  // A server that cannot be reached is said so.
  await page.route('**/search', (route) => route.abort());
  await page.press('#words', 'Enter');
  await idle(page);
  assert.match(await page.textContent('#error'), /could not be reached/);
});

test('keyboard: every control has a label and Tab follows the page order', async (t) => {
  const page = await open(t);
  const unlabelled = await page.$$eval('input:not([type=hidden]):not([hidden]), select, button', (els) =>
    els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
      .map((e) => e.outerHTML.slice(0, 80)));
  assert.deepEqual(unlabelled, []);
  await page.focus('body');
  const order = [];
  for (let i = 0; i < 7; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => {
      const e = document.activeElement;
      return e.id || e.className || e.tagName;
    }));
  }
  assert.deepEqual(order, ['skip', 'A', 'choose-photo', 'words', 'search', 'filters-title', 'f-category']);
  // The skip link jumps to the results.
  await page.focus('.skip');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'results-title');
});

test('phone width: one column, no horizontal scroll, filters folded', async (t) => {
  const page = await open(t, { width: 360, height: 740 });
  assert.equal(await page.evaluate(() => document.getElementById('filters').open), false);
  const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(await fits(), 'the catalogue fits');
  await choosePhoto(page, QUERY_PHOTO);
  await page.click('#filters-title');
  assert.ok(await fits(), 'results and open filters fit');
  const cols = await page.$$eval('#grid > li.card', (cs) => new Set(cs.map((c) => c.getBoundingClientRect().left)).size);
  assert.equal(cols, 2);
  await page.screenshot({ path: `${OUT}/phone-photo-search.png`, fullPage: false });
  await page.locator('#grid .details-btn').first().click();
  await page.waitForSelector('#detail[open]');
  const box = await page.$eval('#detail', (d) => d.getBoundingClientRect().right);
  assert.ok(box <= 360, `the detail view fits (right edge ${box})`);
  assert.ok(await fits(), 'the detail view does not widen the page');
});

test('a second collection shows a collection picker; an empty one says so', async (t) => {
  const res = await fetch(`${BASE}/api/collections`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"e2e_empty","index":"flat"}',
  });
  assert.equal(res.status, 201);
  const page = await open(t);
  assert.ok(await page.isVisible('#collection'));
  await page.selectOption('#collection', 'e2e_empty');
  await idle(page);
  assert.equal((await cardIds(page)).length, 0);
  assert.match(await page.textContent('#status'), /catalogue is empty/);
  assert.ok(await page.isHidden('#f-colour-wrap'), 'no facets, no colour filter');
  await page.selectOption('#collection', 'products');
  await idle(page);
  assert.equal((await cardIds(page)).length, PAGE);
});

// Last, for the README's picture: a photo of a dress and the word "dress" at once, so both
// signals show in the "why" of every card.
test('hybrid search: a photo and words, both in the why', async (t) => {
  const page = await open(t, { width: 1280, height: 900 });
  await page.fill('#words', 'dress');
  await choosePhoto(page, env('DRESS_PHOTO'));
  const cards = page.locator('#grid > li.card');
  assert.equal(await cards.first().getAttribute('data-id'), env('DRESS_ID'));
  for (let i = 0; i < 3; i++) {
    assert.match(await cards.nth(i).locator('.card-meta').textContent(), /^Dress/);
    const why = await cards.nth(i).locator('.why').textContent();
    assert.match(why, /Photo #\d+ [\d.]+/);
    assert.match(why, /Words #\d+ [\d.]+/);
  }
  await page.locator('#words').blur();
  await page.screenshot({ path: `${OUT}/desktop-photo-search.png` });
});

// ---------------------------------------------------------------------------------------

let failed = 0;
for (const [n, { name, fn }] of tests.entries()) {
  const t = { problems: [], pages: [] };
  const start = Date.now();
  try {
    await fn(t);
    assert.deepEqual(t.problems, [], 'the page made no outside request and raised no error');
    console.log(`ok ${n + 1} - ${name} (${Date.now() - start} ms)`);
  } catch (e) {
    failed++;
    console.log(`not ok ${n + 1} - ${name}\n  ${String(e.stack || e).split("\n").slice(0, 30).join('\n  ')}`);
    if (t.problems.length) console.log(`  page problems: ${t.problems.join('; ')}`);
    if (t.pages.length) await t.pages.at(-1).screenshot({ path: `${OUT}/fail-${n + 1}.png` }).catch(() => {});
  }
  for (const p of t.pages) await p.close();
}
await context.close();
console.log(`${tests.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
