/* The demo storefront's shared code: header (search, log in, cart), the
 * catalog read through Bespoke's public catalog endpoints, the cart kept in
 * localStorage, product cards, the consent bar, and bespoke.js set up.
 * Every page loads ../bespoke.js, then this file, then its own few lines. */
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  /* The write key: ?writeKey=... once (remembered), else the demo's key. */
  if (params.get('writeKey')) localStorage.setItem('shop_write_key', params.get('writeKey'));
  const WRITE_KEY = localStorage.getItem('shop_write_key') || 'demo_write_key';
  const FEES = /^(Service|Fees)$/; /* postage and fees of the real data: not products */

  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === 'class') e.className = attrs[k];
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), attrs[k]);
      else if (attrs[k] != null) e.setAttribute(k, attrs[k]);
    }
    for (const kid of kids.flat()) if (kid != null) e.append(kid);
    return e;
  };

  /* --- catalog ------------------------------------------------------------------ */
  const catalog = (path, query) => {
    const q = new URLSearchParams({ writeKey: WRITE_KEY, ...(query || {}) });
    return fetch('/v1/catalog/' + path + '?' + q).then((r) => {
      if (!r.ok) throw new Error('catalog ' + path + ': HTTP ' + r.status);
      return r.json();
    });
  };
  const products = (query) =>
    catalog('products', query).then((r) => ({
      products: (r.products || []).filter((p) => !FEES.test(p.category || '')),
      total: r.total || 0
    }));
  const product = (id) => catalog('products/' + encodeURIComponent(id));
  let categoriesP = null;
  const categories = () =>
    (categoriesP =
      categoriesP ||
      catalog('categories')
        .then((r) => (r.categories || []).filter((c) => c.name && !FEES.test(c.name)))
        .catch(() => []));

  /* UCI Online Retail names are in capitals: show them in title case. */
  const name = (p) => {
    const n = (p && (p.name || p.id)) || '';
    return n === n.toUpperCase() ? n.toLowerCase().replace(/(^|[\s(/-])([a-z])/g, (m, a, b) => a + b.toUpperCase()) : n;
  };
  const money = (v, cur) =>
    typeof v === 'number' ? new Intl.NumberFormat('en-GB', { style: 'currency', currency: cur || 'GBP' }).format(v) : '';
  const hue = (s) => {
    let h = 7;
    for (const ch of String(s)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return h % 360;
  };
  const initials = (p) =>
    name(p)
      .split(/\s+/)
      .filter((w) => /^[A-Za-z]/.test(w))
      .slice(0, 2)
      .map((w) => w[0].toUpperCase())
      .join('') || '?';
  /* No photographs in the data: a coloured tile with the product's initials. */
  const swatch = (p) => {
    const h = hue(p.category || p.id);
    const s = el('div', { class: 'swatch' }, initials(p));
    s.style.setProperty('--c1', `hsl(${h} 55% 72%)`);
    s.style.setProperty('--c2', `hsl(${(h + 35) % 360} 50% 45%)`);
    return s;
  };
  const url = (p) => 'product.html?id=' + encodeURIComponent(p.id);
  const card = (p) =>
    el(
      'a',
      { class: 'card', href: url(p), 'data-product-id': p.id },
      swatch(p),
      el('div', { class: 'name' }, name(p)),
      p.category ? el('div', { class: 'cat' }, p.category) : null,
      el('div', { class: 'price' }, money(p.price, p.currency))
    );
  const grid = (list) => el('div', { class: 'grid' }, list.map(card));

  /* --- cart ------------------------------------------------------------------------- */
  const cart = {
    lines: () => JSON.parse(localStorage.getItem('shop_cart') || '[]'),
    save(lines) {
      localStorage.setItem('shop_cart', JSON.stringify(lines));
      updateCount();
    },
    count: () => cart.lines().reduce((n, l) => n + l.quantity, 0),
    total: () => cart.lines().reduce((n, l) => n + l.quantity * (l.price || 0), 0),
    id() {
      let id = localStorage.getItem('shop_cart_id');
      if (!id) localStorage.setItem('shop_cart_id', (id = 'cart-' + Math.random().toString(36).slice(2, 10)));
      return id;
    },
    /* Segment's Product Added; resolves once Bespoke acknowledged it (the SDK
     * then asks for the page's placements again). */
    add(p, quantity) {
      const lines = cart.lines();
      const line = lines.find((l) => l.product_id === p.id);
      if (line) line.quantity += quantity;
      else lines.push({ product_id: p.id, name: name(p), price: p.price, category: p.category, quantity });
      cart.save(lines);
      return bespoke.track('Product Added', {
        cart_id: cart.id(),
        product_id: p.id,
        name: name(p),
        category: p.category,
        price: p.price,
        currency: p.currency || 'GBP',
        quantity
      });
    },
    remove(productId) {
      const lines = cart.lines();
      const line = lines.find((l) => l.product_id === productId);
      if (!line) return Promise.resolve();
      cart.save(lines.filter((l) => l !== line));
      return bespoke.track('Product Removed', {
        cart_id: cart.id(),
        product_id: line.product_id,
        name: line.name,
        category: line.category,
        price: line.price,
        quantity: line.quantity
      });
    },
    clear() {
      localStorage.removeItem('shop_cart');
      localStorage.removeItem('shop_cart_id');
      updateCount();
    }
  };
  const updateCount = () => {
    const b = document.querySelector('.cart-link b');
    if (b) b.textContent = cart.count();
  };

  /* --- header, footer, log in, consent ------------------------------------------------- */
  const account = () => {
    const box = el('div', { class: 'account' });
    const user = bespoke.user().userId;
    if (user) {
      box.append(
        el('span', null, 'Signed in as ', el('b', { class: 'who' }, user)),
        el('button', { class: 'secondary', type: 'button', onclick: logout }, 'Log out')
      );
    } else {
      const input = el('input', { name: 'customer', placeholder: 'Customer id', 'aria-label': 'Customer id' });
      box.append(
        el(
          'form',
          {
            class: 'account',
            onsubmit(e) {
              e.preventDefault();
              if (input.value.trim()) login(input.value.trim());
            }
          },
          input,
          el('button', { type: 'submit' }, 'Log in'),
          el('span', { class: 'hint' }, 'try 12748, 17841, 14911')
        )
      );
    }
    return box;
  };
  /* Logging in is identify with the customer's id: the anonymous browsing
   * joins the customer's profile, and the placements are decided again. */
  function login(id) {
    bespoke.identify(id).then(() => {
      document.querySelector('.account').replaceWith(account());
    });
  }
  function logout() {
    bespoke.reset();
    cart.clear();
    document.querySelector('.account').replaceWith(account());
  }
  const header = (current) => {
    const q = el('input', { type: 'search', name: 'q', placeholder: 'Search lanterns, mugs, bunting…', value: params.get('q') || '' });
    const nav = el('nav', { class: 'nav' }, el('a', { href: 'category.html' }, 'All products'));
    categories().then((cats) =>
      cats
        .slice()
        .sort((a, b) => b.count - a.count)
        .slice(0, 8)
        .forEach((c) =>
          nav.append(el('a', { href: 'category.html?c=' + encodeURIComponent(c.name), class: c.name === current ? 'current' : '' }, c.name))
        )
    );
    return el(
      'header',
      { class: 'site-header' },
      el(
        'div',
        { class: 'bar' },
        el('a', { class: 'logo', href: 'index.html' }, 'Hearth ', el('span', null, '&'), ' Holly'),
        el('form', { class: 'search', action: 'search.html' }, q, el('button', { type: 'submit' }, 'Search')),
        account(),
        el('a', { class: 'cart-link', href: 'cart.html' }, 'Cart', el('b', null, String(cart.count())))
      ),
      nav,
      /* hidden by a toggle campaign once something is in the cart */
      el('div', { class: 'teaser', id: 'shipping-teaser', 'data-bespoke-placement': 'shipping_teaser' }, 'Free shipping on orders over £50')
    );
  };
  const consentBar = () => {
    if (localStorage.getItem('shop_consent_asked')) return;
    const choose = (all) => () => {
      localStorage.setItem('shop_consent_asked', '1');
      bespoke.consent({ personalization: all, analytics: all, marketing: false });
      bar.remove();
    };
    const bar = el(
      'div',
      { class: 'consent', role: 'region', 'aria-label': 'Privacy choices' },
      'We remember what you browse to show you offers and products that suit you.',
      el(
        'div',
        null,
        el('button', { type: 'button', class: 'accept', onclick: choose(true) }, 'Personalise'),
        el('button', { type: 'button', class: 'secondary decline', onclick: choose(false) }, 'No thanks')
      )
    );
    document.body.append(bar);
  };

  /* Sets up the page: header, footer, consent bar and the SDK. */
  function start(opts) {
    opts = opts || {};
    bespoke.init({
      writeKey: WRITE_KEY,
      currency: 'GBP',
      productUrl: url,
      pageName: opts.page,
      /* product blocks drawn with the shop's own cards */
      renderers: {
        products(c, decision) {
          const items = c.items || decision.items || [];
          if (!items.length) return null;
          return el('div', { class: 'bespoke-products' }, c.title ? el('strong', { class: 'bespoke-title' }, c.title) : null, grid(items));
        }
      },
      debug: true
    });
    if (opts.product) bespoke.context({ product: { id: opts.product } });
    document.body.prepend(header(opts.category));
    document.body.append(
      el('footer', null, 'A demo shop of Bespoke. Catalog and history: UCI Online Retail (Daqing Chen, CC BY 4.0) or a synthetic shop.')
    );
    consentBar();
  }

  window.Shop = { start, el, catalog, products, product, categories, name, money, swatch, card, grid, url, cart, params };
})();
