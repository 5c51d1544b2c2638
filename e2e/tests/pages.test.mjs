// The coordinator's, volunteer's and admin's other pages on a real server
// (see ../run), in a phone-sized viewport: the dashboard's charts and map,
// the vetting board's bulk move, the roster upload's per-row report, the
// duty switch, my hours, and the admin forms; the language switch on each,
// and a coordinator editing the URL to reach another area's dashboard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, SHOTS, PHONE, CJK, api, login as loginWith, signIn as signInWith, uiTexts, launch,
} from '../support.mjs';

const PASSWORD = 'e2e-password-2';
// Names of file formats and services, written the same in both languages.
const TERMS = /\b(xlsx|csv|CSV|Excel|GB18030|Webhook|p50|p90)\b/g;

let browser;
let ids = {};


const login = (phone, password = PASSWORD) => loginWith(phone, password);

async function seed() {
  const admin = await login(process.env.HF_ADMIN_PHONE, process.env.HF_ADMIN_PASSWORD);
  const counties = await api(admin, 'GET', '/api/v1/org-units?kind=county');
  const unit = (code) => counties.find((u) => u.adcode === `${code}000000`).id;
  const gulou = unit('320106');
  const jiangning = unit('320115');
  const team = await api(admin, 'POST', '/api/v1/org-units', {
    kind: 'team', name: '鼓楼区志愿服务队', parent_id: gulou, longitude: 118.77, latitude: 32.07,
  });
  const user = (phone, name, grants) =>
    api(admin, 'POST', '/api/v1/users', { phone, display_name: name, password: PASSWORD, grants });
  await user('13800000102', '孙丽', [{ role: 'coordinator', org_unit_id: gulou }]);
  await user('13800000103', '周明', [{ role: 'coordinator', org_unit_id: jiangning }]);
  const applicant = await user('13800000104', '吴昊', [{ role: 'volunteer', org_unit_id: team.id }]);
  const active = await user('13800000105', '郑洁', [{ role: 'volunteer', org_unit_id: team.id }]);
  const idOf = (u) => u.user?.id ?? u.id;
  for (const u of [applicant, active]) {
    await api(admin, 'POST', '/api/v1/volunteers', {
      user_id: idOf(u), team_id: team.id, home_location: { longitude: 118.77, latitude: 32.07 },
    });
  }
  for (const step of ['reviewed', 'interviewed', 'trained', 'exam_passed', 'agreement_signed', 'insured', 'active']) {
    await api(admin, 'POST', `/api/v1/volunteers/${idOf(active)}/vetting`, { target_state: step });
  }
  // Two hours of offline work last week, backfilled by the coordinator.
  const co = await login('13800000102');
  await api(co, 'POST', `/api/v1/volunteers/${idOf(active)}/hours`, {
    minutes: 120, started_at: Date.now() - 3 * 86400e3, reason: '线下送药（电话登记）',
  });
  // An open order in Gulou, for the map and the daily chart.
  await user('13800000108', '韩梅', [{ role: 'requester' }]);
  const req = await login('13800000108');
  const member = await api(req, 'POST', '/api/v1/household/members', {
    name: '韩梅', relation: 'self', adcode: '320106', street: '湖南路8号', longitude: 118.78, latitude: 32.07,
  });
  const items = await api(req, 'GET', '/api/v1/service-items');
  await api(req, 'POST', '/api/v1/orders', {
    item_id: items[0].id, member_id: member.id,
    window_start: new Date(Date.now() + 3600e3).toISOString(),
    window_end: new Date(Date.now() + 3 * 3600e3).toISOString(),
  }, { 'idempotency-key': `e2e-pages-${Date.now()}` });
  ids = { gulou, jiangning, team: team.id, applicant: idOf(applicant), active: idOf(active) };
}

async function phoneContext(lang = 'zh-CN') {
  return browser.newContext({ viewport: PHONE, locale: lang, extraHTTPHeaders: { 'accept-language': lang } });
}

const signIn = (page, phone) => signInWith(page, phone, PASSWORD);

let shotNo = 40;
async function shot(page, name) {
  shotNo += 1;
  await page.screenshot({ path: `${SHOTS}/${String(shotNo).padStart(2, '0')}-${name}.png`, fullPage: true });
}


async function switchLanguage(page, what) {
  // No page is wider than the phone it is on.
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(wide <= PHONE.width, `${what}: ${wide} px wide on a ${PHONE.width} px phone`);
  const zh = (await uiTexts(page)).filter((t) => t !== 'English');
  assert.deepEqual(zh.filter((t) => /[A-Za-z]{3,}/.test(t.replace(TERMS, ''))), [], `${what}: English in the Chinese page`);
  // Signed in, the switch is a form button (a POST: it also becomes the
  // account's language); wait for the English page it returns to.
  await page.getByRole('button', { name: 'English' }).click();
  await page.locator('html[lang="en"]').waitFor();
  const en = (await uiTexts(page)).filter((t) => t !== '中文');
  assert.deepEqual(en.filter((t) => CJK.test(t)), [], `${what}: Chinese left after switching to English`);
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

test('coordinator: dashboard charts and map, vetting bulk move, roster upload report', async () => {
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  await signIn(page, '13800000102');

  await page.getByRole('link', { name: '数据看板' }).click();
  await page.waitForURL(/\/board\/dashboard/);
  // Charts are drawn (SVG images with names) and the backfilled hours count.
  assert.equal(await page.locator('svg.chart[role=img]').count(), 4);
  await page.locator('svg.chart[aria-label="每日订单（按状态）"]').waitFor();
  await page.locator('svg.chart[aria-label="各队伍服务时长"]').waitFor();
  await page.locator('#map svg.chart').waitFor();
  await page.locator('#map th', { hasText: '鼓楼区' }).waitFor({ state: 'attached' });
  const hours = await page.locator('#figures li', { hasText: '补录时长' }).locator('.tile-value').textContent();
  assert.equal(hours.trim(), '2.0');
  await shot(page, 'coordinator-dashboard');
  await switchLanguage(page, 'coordinator-dashboard');

  // Board search: the open order by its family member's name, with its
  // waiting time; closed orders are searchable too.
  await page.goto(BASE + '/board');
  await page.locator('#q').fill('韩梅');
  await page.locator('#search-submit').click();
  await page.locator('#results').waitFor();
  assert.equal((await page.locator('#result-count').textContent()).trim(), '1');
  await page.locator('#results .badge.wait').waitFor();
  await shot(page, 'coordinator-board-search');
  await page.locator('#state').selectOption('closed');
  await page.locator('#search-submit').click();
  await page.waitForURL(/state=closed/);
  assert.equal((await page.locator('#result-count').textContent()).trim(), '0');
  await switchLanguage(page, 'coordinator-board-search');

  // Another area's dashboard by editing the URL: the not-found page.
  const res = await page.goto(`${BASE}/board/dashboard?org_unit=${ids.jiangning}`);
  assert.equal(res.status(), 404);

  await page.goto(BASE + '/board/volunteers?state=applied');
  const applied = page.locator('#volunteer-list');
  await applied.getByText('吴昊').waitFor();
  await applied.locator(`input[value="${ids.applicant}"]`).check();
  await page.locator('#target_state').selectOption('reviewed');
  await page.locator('#bulk-move').click();
  await page.locator('#move-summary').waitFor();
  assert.match(await page.locator('#move-summary').textContent(), /1 人已调整为“已初审”/);
  await page.goto(BASE + '/board/volunteers?state=reviewed');
  await page.locator('#volunteer-list li[data-state="reviewed"]').getByText('吴昊').waitFor();
  await shot(page, 'coordinator-vetting-moved');
  await switchLanguage(page, 'coordinator-vetting');

  await page.goto(BASE + '/board/import');
  const csv = '姓名,手机号,区县代码\n钱进,13900000106,320106\n冯雪,1390000,320106\n';
  await page.locator('#file').setInputFiles({ name: 'roster.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.locator('#team_id').selectOption(String(ids.team));
  await page.locator('#import-submit').click();
  await page.locator('#import-report').waitFor();
  assert.equal((await page.locator('#created-count').textContent()).trim(), '1');
  assert.equal((await page.locator('#rejected-count').textContent()).trim(), '1');
  await page.locator('tr.rejected', { hasText: '手机号' }).waitFor();
  await shot(page, 'coordinator-import-report');
  await switchLanguage(page, 'coordinator-import');
  await ctx.close();
});

test('volunteer: duty in one tap, my hours', async () => {
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  await signIn(page, '13800000105');
  await page.goto(BASE + '/volunteer');
  assert.equal(await page.locator('#duty-state').getAttribute('data-on-duty'), 'false');
  await page.locator('#duty-toggle').click();
  await page.waitForURL(`${BASE}/volunteer`);
  assert.equal(await page.locator('#duty-state').getAttribute('data-on-duty'), 'true');
  await shot(page, 'volunteer-on-duty');
  await page.getByRole('link', { name: '我的服务时长' }).click();
  await page.waitForURL(`${BASE}/volunteer/hours`);
  const tiles = page.locator('#hours-totals .tile-value');
  assert.equal((await tiles.nth(1).textContent()).trim(), '2.0');
  await shot(page, 'volunteer-hours');
  await switchLanguage(page, 'volunteer-hours');
  await page.goto(BASE + '/volunteer/pairings');
  await shot(page, 'volunteer-pairings');
  await ctx.close();
});

test('admin: a bad phone is refused naming the field; the account is created once', async () => {
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  // The admin's password differs from the seeded users'.
  await page.goto(BASE + '/login');
  await page.getByLabel('手机号').fill(process.env.HF_ADMIN_PHONE);
  await page.getByLabel('密码').fill(process.env.HF_ADMIN_PASSWORD);
  await page.locator('form[action="/login"] button[type=submit]').click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  await page.goto(BASE + '/admin/users');
  await page.locator('details summary').click();
  await page.locator('#phone').fill('1390');
  await page.locator('#display_name').fill('蒋文');
  await page.locator('#password').fill('a-long-password');
  await page.locator('#role').selectOption('requester');
  await page.locator('#user-form button[type=submit]').click();
  await page.locator('#form-error', { hasText: '手机号' }).waitFor();
  await shot(page, 'admin-user-refused');
  await page.locator('#phone').fill('13900000107');
  await page.locator('#display_name').fill('蒋文');
  await page.locator('#password').fill('a-long-password');
  await page.locator('#role').selectOption('requester');
  await page.locator('#user-form button[type=submit]').click();
  await page.locator('#saved').waitFor();
  assert.equal(await page.locator('#users li', { hasText: '139 0000 0107' }).count(), 1);
  await shot(page, 'admin-users');
  await switchLanguage(page, 'admin-users');
  await page.goto(BASE + '/admin/catalogue');
  await shot(page, 'admin-catalogue');
  await page.goto(BASE + '/admin/units');
  await shot(page, 'admin-units');
  await ctx.close();
});
