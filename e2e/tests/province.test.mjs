// At the desk and on the phone, in a 390 px viewport on a real server (see
// ../run): the wizard setting apart a service nobody nearby can deliver and
// saying why; the vetting board with 5,000 volunteers, searched and paged;
// the board's filters; the pairings page (pair, re-pair, end, each
// confirmed); the dashboard's charts and map at phone width. Every page
// visited is checked for the other language's words and for width, and
// photographed in Chinese and in English. The file runs after
// pages.test.mjs (files run in name order on one server): its 5,000
// accounts would push that test's new account off the first page of
// /admin/users.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, SHOTS, PHONE, CJK, api, login as loginWith, signIn as signInWith, uiTexts, launch,
} from '../support.mjs';

const PASSWORD = 'e2e-password-3';
const BIG = 5000;
// Names of file formats and services, written the same in both languages.
const TERMS = /\b(xlsx|csv|CSV|Excel|GB18030|Webhook|p50|p90)\b/g;

let browser;
let ids = {};
const login = (phone, password = PASSWORD) => loginWith(phone, password);
const signIn = (page, phone) => signInWith(page, phone, PASSWORD);

async function seed() {
  const admin = await login(process.env.HF_ADMIN_PHONE, process.env.HF_ADMIN_PASSWORD);
  const counties = await api(admin, 'GET', '/api/v1/org-units?kind=county');
  const pukou = counties.find((u) => u.adcode === '320111000000').id;
  const team = await api(admin, 'POST', '/api/v1/org-units', {
    kind: 'team', name: '浦口区志愿服务队', parent_id: pukou, longitude: 118.63, latitude: 32.06,
  });
  const user = (phone, name, grants) =>
    api(admin, 'POST', '/api/v1/users', { phone, display_name: name, password: PASSWORD, grants });
  const idOf = (u) => u.user?.id ?? u.id;
  await user('13800000301', '陈静', [{ role: 'coordinator', org_unit_id: pukou }]);
  await user('13800000302', '林芳', [{ role: 'requester' }]);
  const vols = [];
  for (const [phone, name] of [['13800000303', '王强'], ['13800000304', '李娜']]) {
    const v = idOf(await user(phone, name, [{ role: 'volunteer', org_unit_id: team.id }]));
    await api(admin, 'POST', '/api/v1/volunteers', {
      user_id: v, team_id: team.id, home_location: { longitude: 118.63, latitude: 32.06 },
    });
    for (const step of ['reviewed', 'interviewed', 'trained', 'exam_passed', 'agreement_signed', 'insured', 'active']) {
      await api(admin, 'POST', `/api/v1/volunteers/${v}/vetting`, { target_state: step });
    }
    const now = Date.now();
    for (const kind of ['training_certificate', 'service_agreement', 'insurance']) {
      await api(admin, 'POST', `/api/v1/volunteers/${v}/credentials`, {
        kind, valid_from: now - 86400e3, valid_to: now + 365 * 86400e3,
        ...(kind === 'insurance' ? { insurer: '中国人保', policy_number: `E2E-${phone}` } : {}),
      });
    }
    await api(await login(phone), 'POST', '/api/v1/volunteers/me/duty', { on_duty: true });
    vols.push(v);
  }
  const req = await login('13800000302');
  await api(req, 'POST', '/api/v1/household/members', {
    name: '林芳', relation: 'self', adcode: '320111', street: '江浦街道1号', longitude: 118.63, latitude: 32.06,
  });
  // A province's worth of applicants, in one roster file.
  const co = await login('13800000301');
  let csv = '姓名,手机号,区县代码\n';
  for (let i = 0; i < BIG; i += 1) csv += `申请人${String(i).padStart(5, '0')},136${String(i).padStart(8, '0')},320111\n`;
  const res = await fetch(`${BASE}/api/v1/volunteers/import?team_id=${team.id}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${co}`, 'content-type': 'text/csv' },
    body: csv,
  });
  const report = await res.json();
  assert.equal(res.status, 200, JSON.stringify(report).slice(0, 500));
  assert.equal(report.rejected, 0, JSON.stringify(report).slice(0, 500));
  ids = { pukou, team: team.id, vols };
}

async function phoneContext(lang = 'zh-CN') {
  return browser.newContext({ viewport: PHONE, locale: lang, extraHTTPHeaders: { 'accept-language': lang } });
}

let shotNo = 70;
async function shot(page, name) {
  shotNo += 1;
  await page.screenshot({ path: `${SHOTS}/${String(shotNo).padStart(2, '0')}-${name}.png`, fullPage: true });
}

/** The page is no wider than the phone and speaks Chinese only; then,
 * switched to English (then `prepare`d as before the first shot, e.g. a
 * fold opened again), English only; both photographed. */
async function bothLanguages(page, what, prepare = async () => {}) {
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(wide <= PHONE.width, `${what}: ${wide} px wide on a ${PHONE.width} px phone`);
  const zh = (await uiTexts(page)).filter((t) => t !== 'English');
  assert.deepEqual(zh.filter((t) => /[A-Za-z]{3,}/.test(t.replace(TERMS, ''))), [], `${what}: English in the Chinese page`);
  await shot(page, `${what}-zh`);
  await page.getByRole('button', { name: 'English' }).click();
  await page.locator('html[lang="en"]').waitFor();
  await prepare(page);
  const en = (await uiTexts(page)).filter((t) => t !== '中文');
  assert.deepEqual(en.filter((t) => CJK.test(t)), [], `${what}: Chinese left after switching to English`);
  const wideEn = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(wideEn <= PHONE.width, `${what} (en): ${wideEn} px wide`);
  await shot(page, `${what}-en`);
  await page.getByRole('button', { name: '中文' }).click();
  await page.locator('html[lang="zh-CN"]').waitFor();
}

before(async () => {
  await seed();
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('the wizard sets apart what nobody nearby can deliver, and says why', async () => {
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  await signIn(page, '13800000302');
  await page.goto(BASE + '/orders/new');
  // Nothing preselected; what the two on-duty volunteers can do is listed.
  const deliverable = page.locator('#deliverable input[type=radio]');
  assert.ok((await deliverable.count()) > 0, 'some service is deliverable');
  assert.equal(await page.locator('#deliverable input:checked').count(), 0, 'nothing preselected');
  // Tutoring needs a tutor, and none is in reach: set apart with the reason.
  const apart = page.locator('#apart');
  await apart.locator('summary').click();
  const why = apart.locator('.why');
  assert.ok((await why.count()) > 0, 'an item is set apart');
  const tutoring = apart.locator('label.choice', { hasText: '辅导' });
  assert.ok((await tutoring.count()) > 0, 'tutoring is set apart');
  assert.match(await tutoring.first().locator('.why').innerText(), /\S/);
  assert.equal(
    await page.locator('#deliverable label.choice', { hasText: '辅导' }).count(), 0,
    'tutoring is not offered as deliverable',
  );
  await bothLanguages(page, 'wizard-apart', async (p) => {
    await p.locator('#apart summary').click();
    assert.ok((await p.locator('#apart .why').count()) > 0, 'the reason, in English');
  });
  await ctx.close();
});

test('the vetting board with 5,000 volunteers: counts, search and paging', async () => {
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  await signIn(page, '13800000301');
  await page.goto(`${BASE}/board/volunteers?team=${ids.team}`);
  const total = Number((await page.locator('#match-count').innerText()).replace(/\D/g, ''));
  assert.ok(total >= BIG, `${total} volunteers counted`);
  const first = await page.locator('#volunteer-list li').count();
  assert.ok(first > 0 && first < total, `one page of ${first}`);
  await bothLanguages(page, 'vetting-5000');
  await page.locator('#next-page').click();
  await page.waitForURL(/page=2/);
  assert.ok(await page.locator('#prev-page').isVisible());
  await shot(page, 'vetting-5000-page-2');
  // One person among 5,000, by name.
  await page.locator('#q').fill('申请人04321');
  await page.locator('#filter-submit').click();
  await page.waitForURL(/q=/);
  assert.equal((await page.locator('#match-count').innerText()).replace(/\D/g, ''), '1');
  await bothLanguages(page, 'vetting-search');
  await ctx.close();
});

test('the board filters by state and waiting time', async () => {
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  await signIn(page, '13800000301');
  await page.goto(BASE + '/board');
  await page.locator('#state').selectOption({ index: 1 });
  await page.locator('#search-submit').click();
  await page.waitForURL(/state=/);
  await page.locator('#result-count').waitFor();
  await bothLanguages(page, 'board-filter');
  await ctx.close();
});

test('pairings: find the family, pair, re-pair and end, each confirmed', async () => {
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  const asked = [];
  page.on('dialog', (d) => { asked.push(d.message()); d.accept(); });
  await signIn(page, '13800000301');
  await page.goto(BASE + '/board/pairings');
  await page.locator('#find-phone').fill('138 0000 0302');
  await page.locator('#find').click();
  await page.locator('#household').waitFor();
  assert.ok(await page.locator('#no-pairings').isVisible());
  await bothLanguages(page, 'pairings-found');

  await page.locator('#pair-phone').fill('13800000303');
  await page.locator('#pair-role').selectOption('primary');
  await page.locator('#pair').click();
  await page.waitForURL(/done=paired/);
  const row = page.locator('#pairings li').first();
  assert.match(await row.innerText(), /王强/);
  await bothLanguages(page, 'pairings-paired');

  await row.locator('details summary').first().click();
  await row.locator('.repair-form input[name=volunteer_phone]').fill('13800000304');
  await row.locator('.repair-form textarea').fill('王强返乡');
  await shot(page, 'pairings-repair-form');
  await row.locator('.repair-form button[type=submit]').click();
  await page.waitForURL(/done=repaired/);
  assert.equal(asked.length, 1, 're-pairing asked first');
  const now = page.locator('#pairings li').first();
  assert.match(await now.innerText(), /李娜/);
  await bothLanguages(page, 'pairings-repaired');

  await now.locator('details summary').nth(1).click();
  await now.locator('.end-form textarea').fill('家庭不再需要');
  await now.locator('.end-form button[type=submit]').click();
  await page.waitForURL(/done=ended/);
  assert.equal(asked.length, 2, 'ending asked first');
  assert.ok(await page.locator('#no-pairings').isVisible());
  await bothLanguages(page, 'pairings-ended');
  await ctx.close();
});

test('dashboard at 390 px: chart text readable, map labels apart', async () => {
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  await signIn(page, '13800000301');
  await page.goto(BASE + '/board/dashboard');
  await page.locator('svg.chart').first().waitFor();
  // Every drawn word is at least 9 CSS px tall on the phone.
  const heights = await page.evaluate(() => [...document.querySelectorAll('svg.chart text')]
    .filter((t) => t.textContent.trim())
    .map((t) => [t.textContent.trim(), t.getBoundingClientRect().height]));
  assert.ok(heights.length > 0, 'the charts have text');
  const small = heights.filter(([, h]) => h < 9);
  assert.deepEqual(small, [], 'chart text under 9 px');
  // No two place names on the map cover each other.
  const boxes = await page.evaluate(() => [...document.querySelectorAll('#map svg.chart text')]
    .filter((t) => t.textContent.trim())
    .map((t) => { const r = t.getBoundingClientRect(); return [t.textContent.trim(), r.left, r.top, r.right, r.bottom]; }));
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) {
      const [a, al, at, ar, ab] = boxes[i];
      const [b, bl, bt, br, bb] = boxes[j];
      const apart = ar <= bl + 0.5 || br <= al + 0.5 || ab <= bt + 0.5 || bb <= at + 0.5;
      assert.ok(apart, `map labels ${a} and ${b} overlap`);
    }
  }
  await bothLanguages(page, 'dashboard-phone');
  await ctx.close();
});
