/* bespoke.js - the browser SDK of Bespoke (docs/sdk.md).
 *
 * Collects what the visitor does as Segment messages (POST /v1/t, /v1/p, /v1/i
 * with writeKey, anonymousId, messageId, timestamp, context.library), or hands
 * them to an analytics.js already on the page; asks POST /v1/decide what the
 * page's placements ([data-bespoke-placement]) should show and renders it
 * (banner, coupon modal, hide/show, quiz, product block); reports impressions
 * (once half the placement is on screen in a visible tab) and clicks as
 * Promotion Viewed / Promotion Clicked; measures the time actually spent on a
 * product page (Product Engaged); honours the visitor's consent choices.
 * No dependencies; must stay under 10 KB minified (tests/browser/size.mjs). */
(function (w, d) {
  'use strict';
  if (w.bespoke && w.bespoke.version) return; /* loaded twice */
  const VERSION = '0.1.0';
  const P = 'bespoke_';
  const IDLE = 60000; /* a minute without input: no longer engaged */
  const REDECIDE = ['Product Added', 'Product Removed', 'Order Completed'];
  const script = d.currentScript;
  const nav = navigator;
  const now = Date.now;
  const noop = () => {};
  const set = Object.assign;
  const on = (t, ...args) => t.addEventListener(...args);
  const listeners = {};
  const mem = {}; /* what may not be written to localStorage yet */
  let cfg = {};
  let ids = {}; /* a: anonymousId, u: userId */
  let prefs = null; /* consent choices, null while unstated */
  let context = {}; /* the page's decide context (search, product, ...) */
  let pending = []; /* events sent and not yet acknowledged */
  let watched = []; /* placements waiting to be seen */
  let started, timer, io, eng;
  let seq = 0;
  let lastInput = now();
  let ready = Promise.resolve();

  /* --- helpers ----------------------------------------------------------- */
  const each = (list, fn) => {
    for (let i = 0; list && i < list.length; i++) fn(list[i], i);
  };
  const attempt = (fn, dflt) => {
    try {
      return fn();
    } catch (e) {
      return dflt;
    }
  };
  const emit = (name, ...args) => each(listeners[name], (fn) => attempt(() => fn(...args)));
  const log = (e) => {
    if (cfg.debug) console.warn('bespoke:', e);
    emit('error', e);
  };
  /* a version 4 UUID, also outside secure contexts (no crypto.randomUUID) */
  const uuid = () => {
    const u = URL.createObjectURL(new Blob());
    URL.revokeObjectURL(u);
    return u.slice(-36);
  };
  const visible = () => d.visibilityState != 'hidden';
  const qsa = (sel, root) => attempt(() => (root || d).querySelectorAll(sel), []);
  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
  const loc = () => w.location;

  /* --- storage and consent ---------------------------------------------- */
  const allowed = (cat) => (prefs ? prefs[cat] === true : !cfg.requireConsent);
  const mayCollect = () => allowed('analytics') || allowed('personalization');
  const ls = () => attempt(() => w.localStorage);
  const load = (k) => (k in mem ? mem[k] : attempt(() => ls().getItem(P + k), null));
  /* Before consent (requireConsent) nothing but the choice itself is stored. */
  const save = (k, v) => {
    mem[k] = v;
    if (k == 'consent' || mayCollect())
      attempt(() => {
        v == null ? ls().removeItem(P + k) : ls().setItem(P + k, v);
        delete mem[k];
      });
  };
  const consentContext = () => (prefs ? { consent: { categoryPreferences: { ...prefs } } } : {});

  /* --- analytics.js alongside --------------------------------------------- */
  const ajs = () => {
    const a = cfg.analytics !== false && w.analytics;
    return a?.track ? a : null;
  };
  const syncAjs = () =>
    attempt(() => {
      const u = ajs().user();
      ids.a = u.anonymousId() || ids.a;
      if (u.id() != null) ids.u = String(u.id());
    });

  /* --- transport ---------------------------------------------------------- */
  /* A text/plain body makes a "simple" request: no CORS preflight. Retries on
   * 429, 5xx and network errors; resolves with the answer's JSON. */
  const post = (path, body, beacon) => {
    const url = cfg.host + path;
    const data = JSON.stringify(body);
    if (beacon && attempt(() => nav.sendBeacon(url, new Blob([data], { type: 'text/plain' })))) return Promise.resolve();
    const go = (n) =>
      fetch(url, { method: 'POST', body: data, keepalive: true }).then(
        (r) =>
          r.ok
            ? r.json().catch(noop)
            : (r.status == 429 || r.status > 499) && n < 3
            ? retry(n)
            : r.text().then((t) => Promise.reject(Error(path + ' ' + r.status + ' ' + t))),
        (e) => (n < 3 ? retry(n) : Promise.reject(e))
      );
    const retry = (n) => sleep(300 << n).then(() => go(n + 1));
    return go(0);
  };
  const pageContext = () => {
    const l = loc();
    return { path: l.pathname, referrer: d.referrer, search: l.search, title: d.title, url: l.href };
  };
  /* Sends one Segment message (t, p or i); resolves true once acknowledged. */
  const send = (type, m, beacon, force) => {
    if (!force && !mayCollect()) return Promise.resolve(false);
    const a = !beacon && ajs();
    const opts = { context: consentContext() };
    let p;
    if (a)
      p = new Promise((res) => {
        const cb = () => res(true);
        type == 't'
          ? a.track(m.event, m.properties, opts, cb)
          : type == 'p'
          ? a.page(m.name, m.properties, opts, cb)
          : a.identify(m.userId, m.traits, opts, cb);
        setTimeout(cb, 2000);
      });
    else {
      set(m, { anonymousId: ids.a, messageId: uuid(), timestamp: new Date().toISOString(), writeKey: cfg.writeKey });
      if (ids.u) m.userId = ids.u;
      m.context = {
        library: { name: 'bespoke.js', version: VERSION },
        page: pageContext(),
        userAgent: nav.userAgent,
        locale: nav.language,
        ...opts.context,
        ...m.context
      };
      p = post('/v1/' + type, m, beacon).then(
        () => true,
        (e) => log(e) || false
      );
    }
    pending.push(p);
    p.then(() => (pending = pending.filter((x) => x != p)));
    return p;
  };

  /* --- the public calls ---------------------------------------------------- */
  const track = (event, props, beacon) => {
    props = props || {};
    if (event == 'Products Searched' && props.query != null) context.search = { query: String(props.query) };
    if (event == 'Product Viewed' && props.product_id != null) {
      context.product = { id: String(props.product_id) };
      if (cfg.engagement !== false) engageStart(props);
    }
    const sent = send('t', { event, properties: props }, beacon);
    if (REDECIDE.includes(event) && !ajs()) sent.then(redecideSoon);
    return sent;
  };
  const page = (name, props) => send('p', { name: name || d.title, properties: { ...pageContext(), ...props } });
  const identify = (userId, traits) => {
    if (userId && typeof userId == 'object') [traits, userId] = [userId, null];
    if (userId != null && userId !== '') save('uid', (ids.u = String(userId)));
    return send('i', { userId: ajs() ? userId : ids.u, traits: traits || {} }).then(redecideSoon);
  };
  /* Records the visitor's choices; sent as context.consent.categoryPreferences
   * on every later message, and at once in a track event. */
  const consent = (choices) => {
    const had = prefs && mayCollect();
    prefs = { personalization: false, analytics: false, marketing: false };
    for (const k in choices) prefs[k] = !!choices[k];
    save('consent', JSON.stringify(prefs));
    for (const k of ['aid', 'uid', 'quiz']) {
      const v = load(k);
      /* granted: the ids kept in memory are stored; revoked: they leave storage */
      if (!mayCollect()) attempt(() => ls().removeItem(P + k));
      save(k, v);
    }
    /* A revocation must reach the server too, or it would go on personalizing;
     * a visitor who never agreed to anything under requireConsent is not sent. */
    return (had || mayCollect() || !cfg.requireConsent
      ? send('t', { event: 'Segment Consent Preference Updated', properties: {} }, 0, 1)
      : Promise.resolve()
    ).then(redecideSoon);
  };
  const reset = () => {
    save('aid', (ids.a = uuid()));
    save('uid', (ids.u = null));
    save('quiz', null);
    attempt(() => ajs().reset());
    redecideSoon();
  };

  /* --- decisions ----------------------------------------------------------- */
  const placementsInPage = () => [...new Set(Array.from(qsa('[data-bespoke-placement]'), (e) => e.dataset.bespokePlacement))];
  const decideContext = () => {
    const c = { page: { type: d.body?.dataset.bespokePage }, ...cfg.context, ...context };
    c.page = { ...c.page, ...pageContext() };
    c.device = c.device || { type: /Mobi|Android/i.test(nav.userAgent) ? 'mobile' : 'desktop' };
    return c;
  };
  /* Waits (up to 1.5 s) for the events already sent, so that the decision sees
   * them: a search shows its banner on the search page itself. */
  const decide = (placements) => {
    const names = typeof placements == 'string' ? [placements] : placements || placementsInPage();
    const mine = ++seq;
    if (!names.length) return Promise.resolve({});
    return ready
      .then(() => Promise.race([Promise.all(pending), sleep(1500)]))
      .then(() => {
        if (ajs()) syncAjs();
        const body = { writeKey: cfg.writeKey, context: decideContext(), placements: names };
        /* without personalization consent the decision is asked anonymously */
        if (allowed('personalization')) set(body, { anonymousId: ids.a }, ids.u && { userId: ids.u });
        return post('/v1/decide', body);
      })
      .then((r) => {
        const ds = r?.decisions || {};
        if (mine == seq || placements)
          each(qsa('[data-bespoke-placement]'), (el) => {
            const n = el.dataset.bespokePlacement;
            if (ds[n] && names.includes(n)) render(el, n, ds[n]);
          });
        emit('decide', ds);
        return ds;
      })
      .catch((e) => log(e) || {});
  };
  const refresh = () => {
    clearTimeout(timer);
    timer = 0;
    return decide();
  };
  const redecideSoon = () => {
    if (started && !timer) timer = setTimeout(refresh);
  };

  /* --- rendering ------------------------------------------------------------ */
  const h = (tag, cls, text, parent) => {
    const e = d.createElement(tag);
    if (cls) e.className = 'bespoke-' + cls;
    if (text != null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  };
  const safeUrl = (u) => (typeof u == 'string' && !/^\s*(javascript|data|vbscript):/i.test(u) ? u : null);
  const fill = (el, nodes) => el.replaceChildren(...nodes);
  const money = (it) =>
    it.price >= 0 ? attempt(() => it.price.toLocaleString(nav.language, { style: 'currency', currency: it.currency || cfg.currency || 'GBP' }), it.price) : '';
  /* an image that does not load gives way to a placeholder with an initial */
  const img = (src, alt, parent) => {
    const i = h('img', 'image', null, parent);
    i.onerror = () => i.replaceWith(h('div', 'noimage', (alt || '?')[0]));
    src ? set(i, { src, alt: alt || '', loading: 'lazy' }) : i.onerror();
  };
  const titled = (cls, c) => {
    const box = h('div', cls);
    if (c.title) h('strong', 'title', c.title, box);
    if (c.text) h('p', 'text', c.text, box);
    return box;
  };
  const button = (cls, text, parent, onclick) => set(h('button', cls, text, parent), { type: 'button', onclick });
  const builders = {
    banner(c) {
      const link = safeUrl(c.link);
      const box = h(link ? 'a' : 'div', 'banner');
      if (link) box.href = link;
      /* html is written by the shop's own staff through the admin API */
      if (c.html) box.innerHTML = c.html;
      else {
        if (c.image) img(c.image, c.title, box);
        box.appendChild(titled('body', c));
      }
      return box;
    },
    coupon(c) {
      const box = titled('coupon', c);
      if (c.code) {
        const row = h('div', 'code-row', null, box);
        h('code', 'code', c.code, row);
        const b = button('copy', 'Copy', row, () => {
          nav.clipboard?.writeText(c.code).catch(noop);
          b.textContent = 'Copied';
        });
      }
      return box;
    },
    products(c, dec) {
      const items = c.items || dec.items;
      if (!items?.length) return; /* nothing to show: the page's own content stays */
      const box = titled('products', { title: c.title });
      const grid = h('div', 'grid', null, box);
      each(items, (it) => {
        const a = h('a', 'product', null, grid);
        a.href = safeUrl(cfg.productUrl ? cfg.productUrl(it) : it.url) || '#';
        a.dataset.productId = it.id;
        img(it.image, it.name || it.id, a);
        h('div', 'name', it.name || it.id, a);
        h('div', 'price', money(it), a);
      });
      return box;
    },
    /* one question at a time; the answers go out as identify traits {quiz:{..}} */
    quiz(c) {
      const box = titled('quiz', { title: c.title });
      const step = h('div', 'step', null, box);
      const qs = c.questions || [];
      const answers = {};
      let i = 0;
      const show = () => {
        const q = qs[i];
        if (!q) {
          fill(step, [h('p', 'thanks', c.thanks || 'Thank you!')]);
          const all = { ...attempt(() => JSON.parse(load('quiz'))), ...answers };
          save('quiz', JSON.stringify(all));
          return identify({ quiz: all });
        }
        const opts = h('div', 'options');
        each(q.options, (o) => {
          button('option', o.label || o.value, opts, () => {
            answers[q.id] = o.value;
            i++;
            show();
          }).dataset.value = o.value;
        });
        fill(step, [h('p', 'question', q.text || q.id), opts]);
      };
      show();
      return box;
    }
  };

  /* A closed modal stays closed for the rest of the session. */
  const DISMISSED = P + 'dismissed';
  const dismissed = (id) => attempt(() => (sessionStorage.getItem(DISMISSED) || '').split(' ').includes(id));
  const modal = (node, st) => {
    const ov = h('div', 'overlay');
    const box = h('div', 'modal', null, ov);
    box.dataset.bespokeFor = st.name;
    set(box, { role: 'dialog', ariaModal: 'true' });
    const close = () => {
      ov.remove();
      d.removeEventListener('keydown', esc);
      attempt(() => sessionStorage.setItem(DISMISSED, (sessionStorage.getItem(DISMISSED) || '') + ' ' + st.dec.campaign));
    };
    const esc = (e) => e.key == 'Escape' && close();
    button('close', '\u00d7', box, close).setAttribute('aria-label', 'Close');
    box.appendChild(node);
    ov.onclick = (e) => e.target == ov && close();
    on(d, 'keydown', esc);
    d.body.appendChild((st.m = ov));
    return box;
  };
  const unwatch = (st) => {
    if (io) io.unobserve(st.el);
    watched = watched.filter((x) => x != st);
  };
  const undo = (st) => {
    if (st.m) st.m.remove();
    for (const [e, hidden, display] of st.t) set(e, { hidden }).style.display = display;
    if (st.r) fill(st.el, st.o);
    st.m = st.r = null;
    st.t = [];
    unwatch(st);
  };
  const toggle = (c, st, show) =>
    each(c[show ? 'show' : 'hide'], (sel) =>
      each(qsa(sel), (e) => {
        st.t.push([e, e.hidden, e.style.display]);
        e.hidden = !show;
        e.style.display = show ? '' : 'none';
        if (show && getComputedStyle(e).display == 'none') e.style.display = 'block';
      })
    );
  const render = (el, name, dec) => {
    const c = dec.content;
    const key = JSON.stringify([dec.campaign, dec.variant, c, dec.items]);
    const st = el._bespoke || (el._bespoke = { el, name, o: [...el.childNodes], t: [] });
    set(el.dataset, { bespokeState: 'ready', bespokeCampaign: dec.campaign || '', bespokeVariant: dec.variant || '' });
    if (st.key == key) return;
    undo(st);
    st.key = key;
    st.dec = dec;
    if (!c || !c.type) return watch(st);
    if (c.type == 'toggle') {
      toggle(c, st);
      toggle(c, st, 1);
      return view(st); /* a hidden element is never "seen": the change is */
    }
    const display = el.dataset.bespokeDisplay;
    const asModal = display == 'modal' || (c.type == 'coupon' && display != 'inline');
    if (asModal && dec.campaign && dismissed(dec.campaign)) return;
    const build = (cfg.renderers || {})[c.type] || builders[c.type];
    const node = build && build(c, dec, name, el);
    if (!node) return;
    const root = asModal ? modal(node, st) : node;
    if (!asModal) {
      fill(el, [node]);
      st.r = 1;
    }
    on(root, 'click', (e) => {
      const t = e.target.closest('a,button,[data-bespoke-click]');
      if (t && !/bespoke-(close|option)/.test(t.className)) report('Clicked', st);
    });
    asModal ? view(st) : watch(st);
  };

  /* --- impressions and clicks ----------------------------------------------- */
  const report = (kind, st) =>
    st.dec.token && track('Promotion ' + kind, { promotion_id: st.dec.campaign, creative: st.name, token: st.dec.token });
  const view = (st) => {
    if (st.v != st.key) {
      st.v = st.key;
      report('Viewed', st);
    }
  };
  /* Seen once half of the placement has been on screen in a visible tab. */
  const watch = (st) => {
    if (!st.dec.token) return;
    if (!io) return view(st);
    watched.push(st);
    io.observe(st.el);
  };
  const onIntersect = (entries) =>
    each(entries, (e) => {
      const st = e.target._bespoke;
      if (st && e.isIntersecting && visible()) {
        unwatch(st);
        view(st);
      }
    });

  /* --- engagement: visible, non-idle seconds on a product page ----------- */
  const tick = () => {
    if (!eng || !eng.s) return;
    const t = now();
    const end = Math.min(t, lastInput + IDLE);
    if (end > eng.s) eng.t += end - eng.s;
    eng.s = visible() ? t : 0;
  };
  const engageFlush = (beacon) => {
    if (!eng) return;
    tick();
    const s = Math.floor(eng.t / 1000);
    if (s < 1) return;
    eng.t -= s * 1000;
    track('Product Engaged', { product_id: eng.p, category: eng.c, seconds: s }, beacon);
  };
  const engageStart = (p) => {
    engageFlush();
    eng = { p: String(p.product_id), c: p.category, t: 0, s: visible() && now() };
  };
  const onInput = () => {
    const t = now();
    if (t - lastInput > IDLE && eng && eng.s) {
      tick();
      eng.s = t;
    }
    lastInput = t;
  };
  const onVisibility = () => {
    if (visible()) {
      lastInput = now();
      if (eng) eng.s = lastInput;
      for (const st of watched) io.unobserve(st.el), io.observe(st.el);
    } else {
      engageFlush(1);
      if (eng) eng.s = 0;
    }
  };

  /* --- start --------------------------------------------------------------- */
  const CSS =
    '.bespoke-overlay{position:fixed;inset:0;background:#0008;display:grid;place-items:center;z-index:99999}' +
    '.bespoke-modal{position:relative;background:#fff;border-radius:12px;padding:28px;max-width:90vw}' +
    '.bespoke-close{position:absolute;top:4px;right:8px;border:0;background:0;color:inherit;font-size:24px}' +
    '.bespoke-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}' +
    '.bespoke-image{max-width:100%}';

  const init = (o) => {
    if (started) return api;
    o = o || {};
    cfg = { ...o, writeKey: o.writeKey || '' };
    /* by default the server that served this script */
    cfg.host = String(o.host || (script && script.src ? new URL(script.src).origin : loc().origin)).replace(/\/+$/, '');
    prefs = attempt(() => JSON.parse(load('consent')), null);
    ids = { a: load('aid'), u: load('uid') };
    if (!ids.a) save('aid', (ids.a = uuid()));
    const a = ajs();
    if (a) {
      ready = Promise.race([new Promise((res) => a.ready && a.ready(res)), sleep(2000)]).then(syncAjs);
      if (a.on) a.on('track', (event) => REDECIDE.includes(event) && setTimeout(redecideSoon, 300));
    }
    if (o.css !== false && !d.getElementById('bespoke-css'))
      set(h('style', null, CSS, d.head), { id: 'bespoke-css' });
    if (w.IntersectionObserver) io = new IntersectionObserver(onIntersect, { threshold: 0.5 });
    on(d, 'visibilitychange', onVisibility);
    on(w, 'pagehide', () => engageFlush(1));
    for (const t of ['mousemove', 'keydown', 'scroll', 'touchstart', 'click'])
      on(w, t, onInput, { passive: true, capture: true });
    setInterval(() => eng && visible() && engageFlush(), o.heartbeat || 15000);
    started = 1;
    if (o.page !== false) page(o.pageName, o.pageProperties);
    /* decide once the DOM is there and the events of this tick are sent */
    if (o.decide !== false) {
      const go = () => setTimeout(redecideSoon);
      d.readyState == 'loading' ? on(d, 'DOMContentLoaded', go) : go();
    }
    return api;
  };

  const api = {
    version: VERSION,
    init,
    track: (event, properties) => track(event, properties),
    page,
    identify,
    consent,
    decide: (placements) => decide(placements || null),
    refresh,
    reset,
    context: (c) => (set(context, c), api),
    on: (name, fn) => ((listeners[name] = listeners[name] || []).push(fn), api),
    user: () => ({ anonymousId: ids.a, userId: ids.u || null, consent: prefs })
  };
  w.bespoke = api;

})(window, document);
