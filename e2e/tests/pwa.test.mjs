// The installed app on a real server (see ../run): the service worker
// installs, the volunteer turns alerts on, an offer arrives as a Web Push
// message at a local push service (which checks the VAPID signature and
// decrypts the payload with Node's own crypto), the real service worker
// shows it and a tap opens the offer; the assignment and the offer list
// open without network and say when they were fetched; check-in and
// check-out done offline are queued and sent with their recorded times
// when the network returns; signing out leaves no copy behind. In Chinese
// and in English, with screenshots.
//
// Headless Chromium cannot reach a real push service, so the page's
// PushManager.subscribe answers with this test's subscription (endpoint on
// the local push service, keys made here); everything after that is the
// product's: the subscription is saved through the page, the server sends
// through its outbox, and the payload is handed to the real service worker
// (DevTools' ServiceWorker.deliverPushMessage) as the browser would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import {
  BASE, SHOTS, PHONE, api, login as loginWith, signIn as signInWith, uiTexts, launch, CJK,
} from '../support.mjs';

const PASSWORD = 'e2e-password-3';
const STREET = '汉中路140号2单元301';
let browser;
let ids = {};
const login = (phone) => loginWith(phone, PASSWORD);

const b64u = (buf) => Buffer.from(buf).toString('base64url');

/** A push service on 127.0.0.1 that verifies and decrypts what it gets. */
function pushService() {
  const ecdh = crypto.createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = crypto.randomBytes(16);
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201).end();
    });
  });
  // A failed test must not leave it holding the runner open.
  server.unref();
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const origin = `http://127.0.0.1:${server.address().port}`;
    resolve({
      origin, got, server,
      subscription: {
        endpoint: `${origin}/push/e2e`,
        keys: { p256dh: b64u(ecdh.getPublicKey()), auth: b64u(auth) },
      },
      // RFC 8292: an ES256 JWT for this origin, signed by the key in k=.
      verify(m, serverKey) {
        const [, t, k] = /^vapid t=([^,]+),\s*k=(.+)$/.exec(m.headers.authorization);
        assert.equal(k, serverKey);
        const [h, c, s] = t.split('.');
        const point = Buffer.from(k, 'base64url');
        const key = crypto.createPublicKey({
          key: { kty: 'EC', crv: 'P-256', x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33, 65)) },
          format: 'jwk',
        });
        assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${c}`), { key, dsaEncoding: 'ieee-p1363' },
          Buffer.from(s, 'base64url')), 'VAPID signature');
        const claims = JSON.parse(Buffer.from(c, 'base64url'));
        assert.equal(claims.aud, origin);
        assert.ok(claims.exp * 1000 > Date.now() && claims.exp * 1000 <= Date.now() + 24 * 3600e3);
        return claims;
      },
      // RFC 8291 §3.4 and RFC 8188 §2 with Node's crypto.
      decrypt(m) {
        assert.equal(m.headers['content-encoding'], 'aes128gcm');
        const b = m.body;
        const salt = b.subarray(0, 16);
        const idlen = b[20];
        const asPublic = b.subarray(21, 21 + idlen);
        const data = b.subarray(21 + idlen);
        const shared = ecdh.computeSecret(asPublic);
        const info = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), asPublic]);
        const ikm = Buffer.from(crypto.hkdfSync('sha256', shared, auth, info, 32));
        const cek = Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
        const nonce = Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
        const d = crypto.createDecipheriv('aes-128-gcm', cek, nonce);
        d.setAuthTag(data.subarray(data.length - 16));
        let plain = Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]);
        let end = plain.length;
        while (end > 0 && plain[end - 1] === 0) end -= 1;
        assert.equal(plain[end - 1], 2, 'last-record delimiter');
        return JSON.parse(plain.subarray(0, end - 1).toString('utf8'));
      },
    });
  }));
}

async function seed() {
  const admin = await loginWith(process.env.HF_ADMIN_PHONE, process.env.HF_ADMIN_PASSWORD);
  const counties = await api(admin, 'GET', '/api/v1/org-units?kind=county');
  const qinhuai = counties.find((u) => u.adcode === '320104000000').id;
  const team = await api(admin, 'POST', '/api/v1/org-units', {
    kind: 'team', name: '秦淮区志愿服务队', parent_id: qinhuai, longitude: 118.79, latitude: 32.02,
  });
  const user = (phone, name, grants) =>
    api(admin, 'POST', '/api/v1/users', { phone, display_name: name, password: PASSWORD, grants });
  await user('13800000201', '周婷', [{ role: 'requester' }]);
  const vol = await user('13800000202', '吴磊', [{ role: 'volunteer', org_unit_id: team.id }]);
  const volId = vol.user?.id ?? vol.id;
  await api(admin, 'POST', '/api/v1/volunteers', {
    user_id: volId, team_id: team.id, home_location: { longitude: 118.79, latitude: 32.02 },
  });
  for (const step of ['reviewed', 'interviewed', 'trained', 'exam_passed', 'agreement_signed', 'insured', 'active']) {
    await api(admin, 'POST', `/api/v1/volunteers/${volId}/vetting`, { target_state: step });
  }
  const now = Date.now();
  for (const kind of ['training_certificate', 'service_agreement', 'insurance']) {
    await api(admin, 'POST', `/api/v1/volunteers/${volId}/credentials`, {
      kind, valid_from: now - 86400e3, valid_to: now + 365 * 86400e3,
      ...(kind === 'insurance' ? { insurer: '中国人保', policy_number: 'E2E-3' } : {}),
    });
  }
  await api(await login('13800000202'), 'POST', '/api/v1/volunteers/me/duty', { on_duty: true });
  const req = await login('13800000201');
  const member = await api(req, 'POST', '/api/v1/household/members', {
    name: '周婷', relation: 'self', phone: '13912340000', adcode: '320104', street: STREET,
    longitude: 118.792, latitude: 32.021,
  });
  ids = { member: member.id, admin };
}

let shotNo = 0;
async function shot(page, name) {
  shotNo += 1;
  await page.screenshot({ path: `${SHOTS}/pwa-${String(shotNo).padStart(2, '0')}-${name}.png`, fullPage: true });
}

async function assertLanguage(page, lang, what) {
  const texts = await uiTexts(page);
  if (lang === 'en') {
    const chinese = texts.filter((t) => t !== '中文' && CJK.test(t));
    assert.deepEqual(chinese, [], `${what}: Chinese in the English page`);
  } else {
    const english = texts.filter((t) => t !== 'English' && /[A-Za-z]{3,}/.test(t));
    assert.deepEqual(english, [], `${what}: English in the Chinese page`);
  }
}

async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const kept = (page, path) => page.evaluate(async (p) => {
  const c = await caches.open('hf-pages');
  return Boolean(await c.match(p));
}, path);

before(async () => {
  await seed();
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('alerts by Web Push, the assignment offline, check-in/out queued and sent', async (t) => {
  const push = await pushService();
  t.after(() => new Promise((r) => { push.server.close(r); push.server.closeAllConnections(); }));
  const ctx = await browser.newContext({ viewport: PHONE, locale: 'zh-CN', extraHTTPHeaders: { 'accept-language': 'zh-CN' } });
  await ctx.grantPermissions(['notifications'], { origin: BASE });
  // The browser's push service, played by the local one (see the top).
  // Like the browser's, the subscription outlives the page.
  await ctx.addInitScript((sub) => {
    const FLAG = 'e2e-push-subscribed';
    const make = () => ({
      endpoint: sub.endpoint,
      expirationTime: null,
      toJSON() { return { endpoint: sub.endpoint, expirationTime: null, keys: sub.keys }; },
      unsubscribe() { localStorage.removeItem(FLAG); return Promise.resolve(true); },
    });
    PushManager.prototype.subscribe = function () {
      localStorage.setItem(FLAG, '1');
      return Promise.resolve(make());
    };
    PushManager.prototype.getSubscription = function () {
      return Promise.resolve(localStorage.getItem(FLAG) ? make() : null);
    };
  }, push.subscription);
  const page = await ctx.newPage();
  // Check-out asks for confirmation: the volunteer says yes.
  page.on('dialog', (d) => d.accept());

  // Signed in with "remember this phone".
  await page.goto(BASE + '/login');
  await page.getByLabel(/手机号/).fill('13800000202');
  await page.getByLabel(/密码/).fill(PASSWORD);
  await page.locator('#remember').check();
  await shot(page, 'login-remember-zh');
  await page.locator('form[action="/login"] button[type=submit]').click();
  await page.waitForURL(`${BASE}/volunteer`);
  const cookie = (await ctx.cookies()).find((c) => c.name === 'hf_session');
  assert.ok(cookie.expires * 1000 > Date.now() + 29 * 86400e3, 'remembered for 30 days');

  // The service worker installs and takes the page.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload();
  await until('a controlling service worker', () => page.evaluate(() => Boolean(navigator.serviceWorker.controller)));
  const manifest = await page.evaluate(() => document.querySelector('link[rel=manifest]').href);
  assert.match(manifest, /manifest\.webmanifest/);

  // Alerts: off, then on.
  await page.locator('#alerts[data-alerts="off"]').waitFor();
  await shot(page, 'volunteer-alerts-off-zh');
  await page.locator('#alerts-on').click();
  await page.locator('#alerts[data-alerts="on"]').waitFor();
  await assertLanguage(page, 'zh', 'volunteer with alerts on');
  await shot(page, 'volunteer-alerts-on-zh');
  const serverKey = (await api(null, 'GET', '/api/v1/push/key')).public_key;

  // An order: the dispatcher offers it, the outbox pushes it.
  const req = await login('13800000201');
  const items = await api(req, 'GET', '/api/v1/service-items');
  const groceries = items.find((i) => i.code === 'groceries') || items[0];
  const order = await api(req, 'POST', '/api/v1/orders', {
    item_id: groceries.id, member_id: ids.member,
    // Starts within check-in's 30-minute lead, so the queued check-in holds.
    window_start: new Date(Date.now() + 10 * 60e3).toISOString(),
    window_end: new Date(Date.now() + 3 * 3600e3).toISOString(),
  }, { 'idempotency-key': `e2e-pwa-${Date.now()}` });
  const msg = await until('a push message', () => push.got.find((m) => m.path === '/push/e2e'), 30000);
  push.verify(msg, serverKey);
  const payload = push.decrypt(msg);
  assert.equal(payload.kind, 'offer_made');
  assert.equal(payload.order_id, order.id);
  assert.match(payload.url, /^\/volunteer#offer-\d+$/);
  const text = JSON.stringify(payload);
  for (const secret of [STREET, '汉中路', '13912340000', '周婷', '吴磊']) {
    assert.ok(!text.includes(secret), `${secret} in the push payload`);
  }

  // The real service worker shows it; a tap opens the offer.
  const cdp = await ctx.newCDPSession(page);
  const regs = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => regs.push(...e.registrations));
  await cdp.send('ServiceWorker.enable');
  const reg = await until('the registration', () => regs.find((r) => r.scopeURL === `${BASE}/` && !r.isDeleted));
  await cdp.send('ServiceWorker.deliverPushMessage', {
    origin: BASE, registrationId: reg.registrationId, data: JSON.stringify(payload),
  });
  const shown = await until('the notification', () => page.evaluate(async () => {
    const r = await navigator.serviceWorker.ready;
    const n = await r.getNotifications();
    return n.length ? { title: n[0].title, body: n[0].body, url: n[0].data.url, tag: n[0].tag } : null;
  }));
  assert.equal(shown.title, payload.title);
  assert.equal(shown.url, payload.url);
  assert.equal(shown.tag, `order-${order.id}`);
  await page.goto(BASE + shown.url);
  const offerId = shown.url.split('-').pop();
  await page.locator(`#offer-${offerId}`).waitFor();
  assert.equal(await page.getByText(STREET).count(), 0, 'no address before accepting');
  await shot(page, 'push-tap-opens-the-offer-zh');

  // Accept: the live assignment is kept for offline use.
  await page.locator(`#offer-${offerId} button.accept`).click();
  await page.waitForURL(`${BASE}/assignments/${order.id}`);
  await page.locator('#address', { hasText: STREET }).waitFor();
  await until('the assignment kept offline', () => kept(page, `/assignments/${order.id}`));
  await page.goto(BASE + '/volunteer');
  await until('the offer list kept offline', () => kept(page, '/volunteer'));

  // Offline: both open from the phone, saying when they were fetched.
  await ctx.setOffline(true);
  await page.goto(BASE + '/volunteer');
  await page.locator('#offline-note').waitFor();
  assert.match(await page.locator('#offline-note').textContent(), /离线副本，获取于 \d{4}-\d\d-\d\d \d\d:\d\d/);
  await shot(page, 'offline-offers-zh');
  await page.goto(BASE + `/assignments/${order.id}`);
  await page.locator('#offline-note').waitFor();
  await page.locator('#address', { hasText: STREET }).waitFor();
  await assertLanguage(page, 'zh', 'offline assignment');
  await shot(page, 'offline-assignment-zh');
  // Check in without network: queued with the time.
  const checkedInAt = Date.now();
  await page.locator('#check-in').click();
  await page.locator('#queued').waitFor();
  assert.match(await page.locator('#queued').textContent(), /已在本机记录到达时间/);
  await page.locator('#check-out').waitFor();
  await shot(page, 'offline-check-in-queued-zh');
  // A while without network before it comes back.
  await new Promise((r) => setTimeout(r, 1500));

  // Network back: sent with the recorded time, the page shows the truth.
  await ctx.setOffline(false);
  await page.reload();
  await until('the check-in on the server', async () =>
    (await api(req, 'GET', `/api/v1/orders/${order.id}`)).state === 'in_service');
  const admin = ids.admin;
  let events = await api(admin, 'GET', `/api/v1/orders/${order.id}/events`);
  const checkIn = events.find((e) => e.action === 'check_in');
  assert.ok(Math.abs(checkIn.at - checkedInAt) < 5000, 'recorded on the phone');
  assert.ok(checkIn.received_at >= checkIn.at, 'received later');

  // The same in English.
  await page.goto(BASE + `/assignments/${order.id}`);
  await page.getByRole('button', { name: 'English' }).click();
  await page.waitForURL(`${BASE}/assignments/${order.id}`);
  await page.locator('#check-out').waitFor();
  await until('the English copy kept', () => page.evaluate(async (p) => {
    const r = await (await caches.open('hf-pages')).match(p);
    return r && (await r.text()).includes('lang="en"');
  }, `/assignments/${order.id}`));
  await page.goto(BASE + '/volunteer');
  await page.locator('#alerts[data-alerts="on"]').waitFor();
  await assertLanguage(page, 'en', 'volunteer with alerts on');
  await shot(page, 'volunteer-alerts-on-en');
  await until('the English offer list kept', () => page.evaluate(async () => {
    const r = await (await caches.open('hf-pages')).match('/volunteer');
    return r && (await r.text()).includes('lang="en"');
  }));
  await ctx.setOffline(true);
  await page.goto(BASE + `/assignments/${order.id}`);
  await page.locator('#offline-note').waitFor();
  assert.match(await page.locator('#offline-note').textContent(), /Offline copy, fetched at/);
  await assertLanguage(page, 'en', 'offline assignment');
  await shot(page, 'offline-assignment-en');
  await page.locator('#check-out').click();
  await page.locator('#queued').waitFor();
  assert.match(await page.locator('#queued').textContent(), /Check-out recorded on this phone at/);
  await shot(page, 'offline-check-out-queued-en');
  await new Promise((r) => setTimeout(r, 1500));
  await page.goto(BASE + '/volunteer');
  await page.locator('#offline-note').waitFor();
  await shot(page, 'offline-offers-en');
  await ctx.setOffline(false);
  await page.reload();
  await until('the check-out on the server', async () =>
    (await api(req, 'GET', `/api/v1/orders/${order.id}`)).state === 'completed');
  events = await api(admin, 'GET', `/api/v1/orders/${order.id}/events`);
  const checkOut = events.find((e) => e.action === 'check_out');
  assert.ok(checkOut.received_at > checkOut.at, 'check-out sent after it happened');

  // Ended: the address is no longer kept once the server says so.
  await page.goto(BASE + `/assignments/${order.id}`);
  await until('the ended assignment dropped', async () => !(await kept(page, `/assignments/${order.id}`)));
  assert.equal(await page.locator('#address').count(), 0);
  await shot(page, 'assignment-ended-en');

  // Signing out leaves no copy behind.
  await page.goto(BASE + '/volunteer');
  await until('the offer list kept', () => kept(page, '/volunteer'));
  await page.locator('form[action="/logout"] button').click();
  await page.waitForURL(/\/login/);
  assert.equal(await kept(page, '/volunteer'), false, 'kept pages cleared at sign-out');
  await shot(page, 'signed-out-en');
  await ctx.close();
});
