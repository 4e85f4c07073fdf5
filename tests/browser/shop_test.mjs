// The demo shop walked in Debian's Chromium (playwright-core), against a real
// `bespoke serve` on 127.0.0.1 with a temporary data directory holding a small
// synthetic shop and the demo's campaigns (scripts/demo-setup.sh):
//   - web/bespoke.js stays under 10 KB minified (terser);
//   - a first-time visitor sees the coupon modal;
//   - a search for "lantern" shows the lantern banner, there and on the next page;
//   - adding to cart hides the free-shipping teaser;
//   - logging in as a high-value customer shows a different hero;
//   - the quiz's answers become traits and bring products that fit them;
//   - impressions, clicks and engaged time reach the visitor's profile;
//   - from another origin, with requireConsent, nothing is sent before consent.
// Screenshots go to ARTIFACTS (default BUILD/test-artifacts/browser).
// Ends with "N passed, N failed, N skipped" (tests/run-all.sh reads it); the
// Chromium tests are skipped, with the reason, when Chromium cannot start.
// Usage: node tests/browser/shop_test.mjs PATH/TO/bespoke [ARTIFACTS]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BIN = path.resolve(process.argv[2] || path.join(ROOT, 'build', 'bespoke'));
const ARTIFACTS = path.resolve(process.argv[3] || path.join(path.dirname(BIN), 'test-artifacts', 'browser'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WRITE_KEY = 'demo_write_key';
const ADMIN_KEY = 'demo_admin_key';
const SIZE_LIMIT = 10000; /* bytes of web/bespoke.js minified */

let passed = 0;
let failed = 0;
let skipped = 0;
const cleanups = [];

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
function skip(name, why) {
  skipped++;
  console.log(`skip ${name}: ${why}`);
}

const freePort = () =>
  new Promise((res, rej) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- the server --------------------------------------------------------------------
function run(args, opts) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`bespoke ${args.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
async function startServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bespoke-browser-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const data = path.join(dir, 'data');
  run(['simulate', '--events', '20000', '--seed', '1', '--out', path.join(dir, 'clickstream.jsonl')]);
  run(['simulate', '--events', '20000', '--seed', '1', '--catalog', '--out', path.join(dir, 'catalog.jsonl')]);
  run(['import', '--data', data, '--format', 'segment-jsonl', path.join(dir, 'clickstream.jsonl')]);
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BESPOKE_')));
  const log = fs.openSync(path.join(dir, 'server.log'), 'w');
  const proc = spawn(
    BIN,
    ['serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--web', path.join(ROOT, 'web'),
      '--write-key', WRITE_KEY, '--admin-key', ADMIN_KEY],
    { env, stdio: ['ignore', log, log] }
  );
  cleanups.push(() => proc.exitCode === null && proc.kill('SIGKILL'));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) break;
    try {
      if ((await fetch(base + '/healthz')).ok) break;
    } catch (e) {
      /* not listening yet */
    }
    await sleep(100);
  }
  if (proc.exitCode !== null) throw new Error('server exited: ' + fs.readFileSync(path.join(dir, 'server.log'), 'utf8'));
  const setup = spawnSync(path.join(ROOT, 'scripts', 'demo-setup.sh'), [base, ADMIN_KEY, '--catalog', path.join(dir, 'catalog.jsonl')], {
    encoding: 'utf8'
  });
  if (setup.status !== 0) throw new Error(`demo-setup.sh failed:\n${setup.stdout}\n${setup.stderr}`);
  console.log(setup.stdout.trim());
  return { base, proc, dir };
}
async function admin(base, p) {
  const r = await fetch(base + p, { headers: { Authorization: 'Bearer ' + ADMIN_KEY } });
  const text = await r.text();
  if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${text}`);
  return text;
}
/* The track events of a visitor, newest first (the admin API). */
async function events(base, id) {
  const r = JSON.parse(await admin(base, `/v1/admin/profiles/${encodeURIComponent(id)}/events?limit=200`));
  return r.events || [];
}
/* A userId among the members of the built-in high_value segment. */
async function highValueCustomer(base) {
  const text = await admin(base, '/v1/admin/segments/high_value/members?format=jsonl');
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const m = JSON.parse(line);
    const ids = m.ids || {};
    const u = m.userId || m.user_id || (Array.isArray(ids.userId) ? ids.userId[0] : ids.userId);
    if (u) return String(u);
  }
  throw new Error('the high_value segment has no member with a userId');
}

// --- the browser -----------------------------------------------------------------------
async function launch() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    return { why: 'playwright-core is not installed in tests/browser (run scripts/install-deps.sh)' };
  }
  if (!fs.existsSync(CHROMIUM)) return { why: `${CHROMIUM} not found (Debian package chromium; run scripts/install-deps.sh)` };
  try {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 60000 });
    cleanups.push(() => browser.close());
    return { browser };
  } catch (e) {
    return { why: 'chromium could not be started: ' + String(e.message || e).split('\n')[0] };
  }
}
async function newPage(browser, errors) {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 820 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  page.setDefaultTimeout(10000);
  return page;
}
const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, name + '.png') });
const campaignOf = (page, placement) =>
  page.getAttribute(`[data-bespoke-placement="${placement}"][data-bespoke-state="ready"]`, 'data-bespoke-campaign');
/* Waits until the placement's answer names that campaign ('' = its default). */
async function waitCampaign(page, placement, campaign) {
  try {
    await page.waitForSelector(`[data-bespoke-placement="${placement}"][data-bespoke-campaign="${campaign}"]`, {
      state: 'attached'
    });
  } catch (e) {
    throw new Error(`${placement}: wanted campaign "${campaign}", have "${await campaignOf(page, placement)}"`);
  }
}
async function poll(fn, what, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(150);
  }
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });

  await test('bespoke.js is under 10 KB minified', async () => {
    const { minify } = await import('terser');
    const src = fs.readFileSync(path.join(ROOT, 'web', 'bespoke.js'), 'utf8');
    const out = await minify(src, { compress: true, mangle: true });
    const size = Buffer.byteLength(out.code);
    console.log(`     web/bespoke.js: ${Buffer.byteLength(src)} bytes, ${size} minified`);
    assert(size < SIZE_LIMIT, `minified size ${size} >= ${SIZE_LIMIT}`);
  });

  const NAMES = [
    'first-time visitor sees the coupon modal',
    'searching "lantern" shows the lantern banner, and on the next page',
    'adding to cart hides the free-shipping teaser',
    'checkout sends the order; a buyer no longer gets the first-order coupon',
    'a high-value customer who logs in sees a different hero',
    'quiz answers become traits and bring fitting products',
    'impressions, clicks and engaged seconds reach the profile',
    'another origin with requireConsent: nothing before consent'
  ];
  const { browser, why } = await launch();
  if (!browser) {
    for (const n of NAMES) skip(n, why);
    return;
  }
  const srv = await startServer();
  const B = srv.base + '/shop/';
  const errors = [];

  // 1. The coupon modal for first-time visitors (computed.orders = 0).
  const page = await newPage(browser, errors);
  await test(NAMES[0], async () => {
    await page.goto(B + 'index.html');
    await page.click('.consent .accept');
    const modal = await page.waitForSelector('.bespoke-modal[data-bespoke-for="home_modal"]');
    assert((await modal.textContent()).includes('WELCOME10'), 'the modal shows the code');
    await waitCampaign(page, 'home_modal', 'welcome_coupon');
    await waitCampaign(page, 'home_hero', ''); /* the placement's default */
    await shot(page, '01-home-coupon-modal');
    await page.click('.bespoke-close');
    await page.waitForSelector('.bespoke-overlay', { state: 'detached' });
    await page.reload();
    await waitCampaign(page, 'home_modal', 'welcome_coupon');
    assert(!(await page.$('.bespoke-overlay')), 'a closed modal stays closed in the session');
  });

  // 2. "If the visitor searched X, show banner 2".
  await test(NAMES[1], async () => {
    await page.fill('.search input', 'lantern');
    await Promise.all([page.waitForURL(/search\.html/), page.press('.search input', 'Enter')]);
    await waitCampaign(page, 'search_banner', 'lantern_search_banner');
    await page.waitForSelector('[data-bespoke-placement="search_banner"] .bespoke-banner');
    await page.waitForSelector('.card');
    await shot(page, '02-search-lantern-banner');
    await page.click('.logo');
    await waitCampaign(page, 'home_hero', 'lantern_hero');
    assert((await page.textContent('[data-bespoke-placement="home_hero"]')).includes('lantern'), 'the hero talks about lanterns');
    await shot(page, '03-home-lantern-hero');
  });

  // 3. "If the visitor clicks Add to Cart, hide something".
  await test(NAMES[2], async () => {
    await page.goto(B + 'search.html?q=lantern');
    await page.click('.card');
    await page.waitForSelector('.add-to-cart');
    await waitCampaign(page, 'shipping_teaser', '');
    assert(await page.isVisible('#shipping-teaser'), 'the teaser shows before add to cart');
    await page.click('.add-to-cart');
    await page.waitForSelector('#shipping-teaser', { state: 'hidden' });
    await waitCampaign(page, 'shipping_teaser', 'cart_hides_teaser');
    await page.waitForSelector('.note a');
    await shot(page, '04-added-to-cart-teaser-hidden');
    await page.click('.cart-link');
    await page.waitForSelector('table.cart');
    await waitCampaign(page, 'shipping_teaser', 'cart_hides_teaser');
    assert(!(await page.isVisible('#shipping-teaser')), 'the teaser stays hidden on the next page');
    await shot(page, '05-cart');
  });

  // 3b. Checkout Started, Order Completed; computed.orders = 1 ends the coupon.
  await test(NAMES[3], async () => {
    await page.click('a.checkout');
    await page.waitForSelector('form.checkout');
    await page.fill('input[name=name]', 'Ada Shopper');
    await page.fill('input[name=address]', '1 Test Street');
    await page.fill('input[name=coupon]', 'WELCOME10');
    await page.click('form.checkout button[type=submit]');
    await page.waitForSelector('.done');
    await shot(page, '06-order-completed');
    const aid = await page.evaluate(() => bespoke.user().anonymousId);
    const names = (await events(srv.base, aid)).map((e) => e.event);
    for (const n of ['Checkout Started', 'Order Completed', 'Product Added', 'Products Searched', 'Cart Viewed'])
      assert(names.includes(n), n + ' on the profile: ' + names.join(', '));
    await page.goto(B + 'category.html?c=' + encodeURIComponent('Home > Lighting'));
    await page.waitForSelector('.card');
    await shot(page, '07-category');
    await page.click('.logo');
    await waitCampaign(page, 'home_modal', '');
    assert(!(await page.$('.bespoke-overlay')), 'no coupon modal after the first order');
    assert(await page.isVisible('#shipping-teaser'), 'the cart is empty again: the teaser is back');
  });

  // 4. A returning high-value customer (in_segment("high_value")).
  const vip = await newPage(browser, errors);
  await test(NAMES[4], async () => {
    const id = await highValueCustomer(srv.base);
    await vip.goto(B + 'index.html');
    await vip.click('.consent .accept');
    await waitCampaign(vip, 'home_hero', '');
    const before = await vip.textContent('[data-bespoke-placement="home_hero"]');
    await vip.click('.bespoke-close').catch(() => {});
    await vip.fill('.account input', id);
    await vip.press('.account input', 'Enter');
    await vip.waitForSelector('.account .who');
    await waitCampaign(vip, 'home_hero', 'vip_hero');
    const after = await vip.textContent('[data-bespoke-placement="home_hero"]');
    assert(after !== before && after.includes('Welcome back'), `the hero changed (before "${before}", after "${after}")`);
    await shot(vip, '08-high-value-customer-hero');
  });

  // 5. Zero-party data: the quiz's answers as identify traits.
  await test(NAMES[5], async () => {
    const q = await newPage(browser, errors);
    await q.goto(B + 'index.html');
    await q.click('.consent .accept');
    await waitCampaign(q, 'home_quiz', 'style_quiz');
    await q.click('.bespoke-close').catch(() => {});
    await q.click('.bespoke-option[data-value="black"]');
    await q.click('.bespoke-option[data-value="kitchen"]');
    await waitCampaign(q, 'home_quiz', 'quiz_picks');
    await q.waitForSelector('[data-bespoke-placement="home_quiz"] .card');
    await q.locator('[data-bespoke-placement="home_quiz"]').scrollIntoViewIfNeeded();
    await shot(q, '09-quiz-picks');
    const aid = await q.evaluate(() => bespoke.user().anonymousId);
    const prof = JSON.parse(await admin(srv.base, '/v1/admin/profiles/' + aid));
    assert(prof.traits && prof.traits.quiz && prof.traits.quiz.color === 'black' && prof.traits.quiz.room === 'kitchen',
      'traits.quiz on the profile: ' + JSON.stringify(prof.traits));
  });

  // 6. What the SDK reports: Promotion Viewed / Clicked with the token, Product Engaged.
  await test(NAMES[6], async () => {
    const aid = await page.evaluate(() => bespoke.user().anonymousId);
    await page.goto(B + 'search.html?q=lantern');
    await page.waitForSelector('[data-bespoke-placement="search_banner"] .bespoke-banner');
    await page.waitForSelector('.card');
    await Promise.all([page.waitForURL(/search\.html\?q=lantern/), page.click('[data-bespoke-placement="search_banner"] .bespoke-banner')]);
    await page.click('.card');
    await page.waitForSelector('.add-to-cart');
    await sleep(2300);
    await page.goto(B + 'index.html'); /* pagehide: the engaged seconds go by sendBeacon */
    const evs = await poll(async () => {
      const e = await events(srv.base, aid);
      return e.some((x) => x.event === 'Product Engaged') && e;
    }, 'Product Engaged on the profile');
    const viewed = evs.filter((e) => e.event === 'Promotion Viewed').map((e) => e.properties);
    const clicked = evs.filter((e) => e.event === 'Promotion Clicked').map((e) => e.properties);
    for (const c of ['welcome_coupon', 'lantern_search_banner', 'lantern_hero', 'cart_hides_teaser'])
      assert(viewed.some((p) => p.promotion_id === c && p.token && p.creative), 'Promotion Viewed of ' + c + ': ' + JSON.stringify(viewed));
    assert(clicked.some((p) => p.promotion_id === 'lantern_search_banner' && p.creative === 'search_banner' && p.token),
      'Promotion Clicked of the banner: ' + JSON.stringify(clicked));
    const engaged = evs.find((e) => e.event === 'Product Engaged').properties;
    assert(engaged.product_id && engaged.seconds >= 2 && engaged.seconds <= 4, 'Product Engaged: ' + JSON.stringify(engaged));
    const tracked = evs.find((e) => e.event === 'Products Searched');
    assert(tracked.context && tracked.context.library && tracked.context.library.name === 'bespoke.js' && tracked.messageId,
      'Segment shape: ' + JSON.stringify(tracked));
    assert(tracked.context.consent && tracked.context.consent.categoryPreferences.personalization === true,
      'consent in the context: ' + JSON.stringify(tracked.context));
  });

  // 7. A shop on another origin (CORS), with requireConsent: nothing personal
  //    leaves before the visitor's choice; after it, the choice travels along.
  await test(NAMES[7], async () => {
    const shopPort = await freePort();
    const html = `<!doctype html><html><body data-bespoke-page="home">
      <div data-bespoke-placement="home_hero"><p>house hero</p></div>
      <script src="${srv.base}/bespoke.js"></script>
      <script>bespoke.init({ writeKey: '${WRITE_KEY}', requireConsent: true });</script></body></html>`;
    const other = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(html);
    });
    await new Promise((r) => other.listen(shopPort, '127.0.0.1', r));
    cleanups.push(() => other.close());
    const p = await newPage(browser, errors);
    const sent = [];
    p.on('request', (r) => r.url().startsWith(srv.base + '/v1/') && sent.push({ url: r.url(), body: r.postData() }));
    const answers = [];
    p.on('response', (r) => r.url().startsWith(srv.base + '/v1/') && answers.push(r.status()));
    await p.goto(`http://127.0.0.1:${shopPort}/`);
    await sleep(1200);
    const personal = sent.filter((s) => !s.url.endsWith('/v1/decide') || /anonymousId|userId/.test(s.body || ''));
    assert(personal.length === 0, 'sent before consent: ' + JSON.stringify(personal));
    assert((await p.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('bespoke_')))).length === 0,
      'nothing stored before consent');
    const before = answers.length;
    await p.evaluate(() => bespoke.consent({ personalization: true, analytics: true, marketing: false }));
    await p.evaluate(() => bespoke.track('Product Viewed', { product_id: 'sku-00001' }));
    const pv = await poll(() => sent.find((s) => s.url.endsWith('/v1/t') && s.body.includes('Product Viewed')), 'a track after consent');
    const msg = JSON.parse(pv.body);
    assert(msg.anonymousId && msg.context.consent.categoryPreferences.marketing === false &&
      msg.context.consent.categoryPreferences.personalization === true, 'consent in the context: ' + pv.body);
    await poll(() => answers.length >= sent.length, 'answers');
    assert(answers.slice(before).every((s) => s >= 200 && s < 300), 'every cross-origin call after consent answered 2xx: ' + answers.join(','));
    await waitCampaign(p, 'home_hero', '');
    await shot(p, '10-other-origin-after-consent');
  });

  assert(true);
  if (errors.length) {
    failed++;
    console.log('FAIL no JavaScript errors in the pages: ' + errors.join(' | '));
  } else {
    passed++;
    console.log('ok   no JavaScript errors in the pages');
  }
  console.log('     screenshots in ' + ARTIFACTS);
}

try {
  await main();
} catch (e) {
  failed++;
  console.log('FAIL setup: ' + (e && e.stack ? e.stack : e));
} finally {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (e) {
      /* best effort */
    }
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
