// Segment's unchanged Node SDK (@segment/analytics-node) sending to a local
// Bespoke server: every call type, then a burst that the SDK batches
// (flushAt 10). Prints one JSON line with what it sent and what the server
// answered; exits 1 if the SDK reported any delivery error.
// Usage: node sdk_test.mjs PORT [WRITE_KEY] [BURST]
import { Analytics } from '@segment/analytics-node';

const port = Number(process.argv[2]);
const writeKey = process.argv[3] || 'wk_test';
const burst = Number(process.argv[4] || 57);
if (!port) {
  console.error('usage: node sdk_test.mjs PORT [WRITE_KEY] [BURST]');
  process.exit(2);
}

const analytics = new Analytics({
  writeKey,
  host: `http://127.0.0.1:${port}`,
  path: '/v1/batch',
  flushAt: 10,
  flushInterval: 200,
  maxRetries: 1,
  httpRequestTimeout: 20000,
});

const errors = [];
const statuses = {};
let requests = 0;
let sent = 0;
const done = [];

analytics.on('error', (err) => errors.push(String(err && (err.reason || err.message || err))));
analytics.on('http_request', () => { requests++; });
analytics.on('http_response', (r) => { statuses[r.status] = (statuses[r.status] || 0) + 1; });

// Each call's callback reports delivery of that event.
function call(method, params) {
  sent++;
  done.push(new Promise((resolve) => {
    analytics[method](params, (err) => {
      if (err) errors.push(`${method}: ${err.reason || err.message || err}`);
      resolve();
    });
  }));
}

const user = 'sdk-user-1';
const anon = 'sdk-anon-1';
const t0 = Date.parse('2024-11-01T10:00:00.000Z');
const at = (min) => new Date(t0 + min * 60000);

call('identify', {
  userId: user, anonymousId: anon, timestamp: at(0), messageId: 'sdk-identify-1',
  traits: { email: 'sdk@example.com', name: 'Sam Dev', quiz: { style: 'boho', budget: 'mid' } },
});
call('track', {
  userId: user, event: 'Product Viewed', timestamp: at(1), messageId: 'sdk-track-1',
  properties: { product_id: 'sdk-p1', name: 'Rattan Chair', price: 120, category: 'Furniture', brand: 'Weave' },
});
call('page', {
  userId: user, name: 'Home', category: 'Landing', timestamp: at(2), messageId: 'sdk-page-1',
  properties: { url: 'https://shop.example.com/', path: '/' },
});
call('screen', { userId: user, name: 'Cart', timestamp: at(3), messageId: 'sdk-screen-1' });
call('group', {
  userId: user, groupId: 'sdk-group-1', timestamp: at(4), messageId: 'sdk-group-1',
  traits: { name: 'Acme Shops', plan: 'enterprise' },
});
call('alias', { userId: user, previousId: 'sdk-prev-1', timestamp: at(5), messageId: 'sdk-alias-1' });
call('track', {
  userId: user, event: 'Order Completed', timestamp: at(6), messageId: 'sdk-order-1',
  properties: { order_id: 'sdk-o1', revenue: 42.5, currency: 'EUR',
    products: [{ product_id: 'sdk-p1', price: 42.5, quantity: 1 }] },
});
// anonymous visitor
call('track', {
  anonymousId: 'sdk-anon-2', event: 'Products Searched', timestamp: at(7),
  messageId: 'sdk-search-1', properties: { query: 'rattan' },
});

for (let i = 0; i < burst; i++) {
  call('track', {
    userId: 'sdk-burst', event: 'Burst', messageId: `sdk-burst-${i}`,
    timestamp: at(10 + i / 60), properties: { i },
  });
}

await Promise.all(done);
await analytics.closeAndFlush({ timeout: 30000 });
console.log(JSON.stringify({ sent, requests, statuses, errors }));
process.exit(errors.length ? 1 : 0);
