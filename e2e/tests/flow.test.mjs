// End-to-end flow of the web interface on a real server (see ../run):
// a requester orders on a phone, a volunteer in another browser context
// takes it and checks in and out, the requester follows each state live and
// confirms, a coordinator watches the live board and manually dispatches a
// second order; the language switch, and two privacy checks by URL editing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, SHOTS, PHONE, CJK, api, login as loginWith, signIn as signInWith, uiTexts, launch,
} from '../support.mjs';

const PASSWORD = 'e2e-password-1';

let browser;
let ids = {};


const login = (phone, password = PASSWORD) => loginWith(phone, password);

async function seed() {
  const admin = await login(process.env.HF_ADMIN_PHONE, process.env.HF_ADMIN_PASSWORD);
  const counties = await api(admin, 'GET', '/api/v1/org-units?kind=county');
  const unit = (code) => counties.find((u) => u.adcode === `${code}000000`).id;
  const xuanwu = unit('320102');
  const qinhuai = unit('320104');
  const team = await api(admin, 'POST', '/api/v1/org-units', {
    kind: 'team', name: '玄武区志愿服务队', parent_id: xuanwu, longitude: 118.79, latitude: 32.05,
  });
  const user = (phone, name, grants) =>
    api(admin, 'POST', '/api/v1/users', { phone, display_name: name, password: PASSWORD, grants });
  await user('13800000001', '王芳', [{ role: 'requester' }]);
  await user('13800000002', '陈静', [{ role: 'coordinator', org_unit_id: xuanwu }]);
  await user('13800000003', '刘洋', [{ role: 'coordinator', org_unit_id: qinhuai }]);
  const vol = await user('13800000004', '李伟', [{ role: 'volunteer', org_unit_id: team.id }]);
  await user('13800000005', '赵磊', [{ role: 'volunteer', org_unit_id: team.id }]);
  const requester = await login('13800000001');
  await api(requester, 'POST', '/api/v1/household/members', {
    name: '王芳', relation: 'self', phone: '13912345678', adcode: '320102',
    street: '中山东路321号3栋502', longitude: 118.8, latitude: 32.05,
  });
  await api(requester, 'POST', '/api/v1/household/members', {
    name: '王建国', relation: 'parent', adcode: '320102', street: '北京东路41号', longitude: 118.79, latitude: 32.06,
  });
  // 李伟 is a vetted volunteer: profile with a home point, every vetting
  // step, the three base credentials, on duty; so the dispatcher offers.
  const volId = vol.user?.id ?? vol.id;
  await api(admin, 'POST', '/api/v1/volunteers', {
    user_id: volId, team_id: team.id, home_location: { longitude: 118.795, latitude: 32.05 },
  });
  for (const step of ['reviewed', 'interviewed', 'trained', 'exam_passed', 'agreement_signed', 'insured', 'active']) {
    await api(admin, 'POST', `/api/v1/volunteers/${volId}/vetting`, { target_state: step });
  }
  const now = Date.now();
  for (const kind of ['training_certificate', 'service_agreement', 'insurance']) {
    await api(admin, 'POST', `/api/v1/volunteers/${volId}/credentials`, {
      kind, valid_from: now - 86400e3, valid_to: now + 365 * 86400e3,
      ...(kind === 'insurance' ? { insurer: '中国人保', policy_number: 'E2E-1' } : {}),
    });
  }
  const v = await login('13800000004');
  await api(v, 'POST', '/api/v1/volunteers/me/duty', { on_duty: true });
  ids = { xuanwu, qinhuai, volunteer: vol.user?.id ?? vol.id };
}

async function phoneContext(lang = 'zh-CN') {
  return browser.newContext({ viewport: PHONE, locale: lang, extraHTTPHeaders: { 'accept-language': lang } });
}

const signIn = (page, phone) => signInWith(page, phone, PASSWORD);

let shotNo = 0;
async function shot(page, name) {
  shotNo += 1;
  await page.screenshot({ path: `${SHOTS}/${String(shotNo).padStart(2, '0')}-${name}.png`, fullPage: true });
}


async function assertEnglish(page, what) {
  // The link back to Chinese is written in Chinese on purpose.
  const texts = (await uiTexts(page)).filter((t) => t !== '中文');
  const chinese = texts.filter((t) => CJK.test(t));
  assert.deepEqual(chinese, [], `${what}: Chinese left after switching to English`);
}

async function assertChinese(page, what) {
  const texts = (await uiTexts(page)).filter((t) => t !== 'English');
  const english = texts.filter((t) => /[A-Za-z]{3,}/.test(t));
  assert.deepEqual(english, [], `${what}: English left in the Chinese page`);
}

async function switchLanguage(page, what) {
  await assertChinese(page, what);
  // Signed in, the switch is a form button (a POST: it also becomes the
  // account's language); wait for the English page it returns to.
  await page.getByRole('button', { name: 'English' }).click();
  await page.locator('html[lang="en"]').waitFor();
  await assertEnglish(page, what);
  await shot(page, `${what}-en`);
  await page.getByRole('button', { name: '中文' }).click();
  await page.locator('html[lang="zh-CN"]').waitFor();
  await assertChinese(page, what);
}

before(async () => {
  await seed();
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('order, live offer, check-in/out, live status, confirm, board, manual dispatch', async () => {
  // Requester on a phone: three steps, members and address pre-filled.
  const reqCtx = await phoneContext();
  const req = await reqCtx.newPage();
  await signIn(req, '13800000001');
  assert.match(new URL(req.url()).pathname, /^\/orders/);
  await shot(req, 'requester-orders-empty');
  await switchLanguage(req, 'requester-orders');
  await req.locator('#new-order').click();
  // Step 1 lists what a volunteer can deliver here now; nobody near holds
  // a driving licence, so the free ride is apart, saying why.
  await switchLanguage(req, 'requester-step1');
  assert.equal(await req.locator('#deliverable').getByText('免费用车').count(), 0, 'ride offered with no driver near');
  await req.locator('#apart summary').click();
  await req.locator('#apart', { hasText: '附近暂时没有能提供免费用车的志愿者' }).waitFor();
  assert.equal(await req.locator('#deliverable input:checked').count(), 0, 'an item was preselected');
  await shot(req, 'requester-step1-apart');
  await req.getByLabel(/日常采购|买菜|groceries/i).first().check();
  await shot(req, 'requester-step1-item');
  await req.getByRole('button', { name: '下一步' }).click();
  await assert.doesNotReject(req.getByText('中山东路321号3栋502').waitFor());
  await shot(req, 'requester-step2-who');
  await req.getByRole('button', { name: '下一步' }).click();
  // A window that starts in a few minutes, so check-in (open from 30 min
  // before the window) is possible during the test. Shanghai is UTC+8.
  const local = (ms) => new Date(ms + 8 * 3600e3).toISOString().slice(0, 16);
  await req.locator('#window_start').fill(local(Date.now() + 5 * 60e3));
  await req.locator('#window_end').fill(local(Date.now() + 2 * 3600e3));
  await req.getByLabel(/公开说明/).fill('需要买两袋米');
  await shot(req, 'requester-step3-when');
  await req.locator('#place-order').click();
  await req.waitForURL(/\/orders\/\d+$/);
  const orderId = Number(new URL(req.url()).pathname.split('/').pop());
  await shot(req, 'requester-order-placed');
  await switchLanguage(req, 'requester-order');

  // Volunteer in another browser context: the dispatcher's offer appears live.
  const volCtx = await phoneContext();
  const vol = await volCtx.newPage();
  // Check-out asks for confirmation: the volunteer says yes.
  vol.on('dialog', (d) => d.accept());
  await signIn(vol, '13800000004');
  await vol.goto(BASE + '/volunteer');
  await shot(vol, 'volunteer-home');
  await switchLanguage(vol, 'volunteer-home');
  const offer = vol.locator('li.offer').first();
  await offer.waitFor({ timeout: 20000 });
  // Coordinator on a desktop: the order is on the live board.
  const coCtx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'zh-CN' });
  const co = await coCtx.newPage();
  await signIn(co, '13800000002');
  assert.equal(new URL(co.url()).pathname, '/board');
  await co.locator(`.board [data-order="${orderId}"]`).waitFor();
  await shot(co, 'coordinator-board');
  await switchLanguage(co, 'coordinator-board');

  await shot(vol, 'volunteer-offer-live');
  assert.equal(await vol.getByText('中山东路321号3栋502').count(), 0, 'address before accepting');
  await offer.locator('button.accept').click();
  await vol.waitForURL(`${BASE}/assignments/${orderId}`);
  await vol.locator('#address', { hasText: '中山东路321号3栋502' }).waitFor();
  await vol.locator('#route-hint').waitFor();
  await shot(vol, 'volunteer-assignment');

  // Each state change shows on the requester's page without reloading.
  const reqState = req.locator('#order-state');
  await req.waitForFunction(() => document.querySelector('#order-state')?.dataset.state === 'assigned');
  await req.locator('#volunteer', { hasText: '伟' }).waitFor();
  await shot(req, 'requester-live-assigned');
  await vol.locator('#check-in').click();
  await vol.locator('#check-out').waitFor();
  await req.waitForFunction(() => document.querySelector('#order-state')?.dataset.state === 'in_service');
  await shot(req, 'requester-live-in-service');
  await vol.locator('#check-out').click();
  await vol.waitForFunction(() => document.querySelector('#order-state')?.dataset.state === 'completed');
  await shot(vol, 'volunteer-checked-out');
  // After the service the address is gone from the volunteer's page.
  assert.equal(await vol.locator('#address').count(), 0);
  await req.waitForFunction(() => document.querySelector('#order-state')?.dataset.state === 'completed');
  await req.locator('#confirm').click();
  await req.waitForURL(`${BASE}/orders/${orderId}`);
  assert.equal(await reqState.getAttribute('data-state'), 'confirmed');
  await shot(req, 'requester-confirmed');

  // A second order (placed through the API), dispatched by hand from the board.
  const rtoken = await login('13800000001');
  const household = await api(rtoken, 'GET', '/api/v1/household');
  const member = household.members[1].id;
  const items = await api(rtoken, 'GET', '/api/v1/service-items');
  const start = new Date(Date.now() + 3 * 3600e3).toISOString();
  const end = new Date(Date.now() + 5 * 3600e3).toISOString();
  const second = await api(rtoken, 'POST', '/api/v1/orders',
    { item_id: items[0].id, member_id: member, window_start: start, window_end: end },
    { 'idempotency-key': `e2e-${Date.now()}` });
  await co.goto(BASE + '/board');
  await co.locator(`.board [data-order="${second.id}"]`).waitFor();
  await co.locator(`.board [data-order="${second.id}"] a`).click();
  await co.waitForURL(`${BASE}/board/orders/${second.id}`);
  const assignButton = co.locator('#assign');
  if (await assignButton.count()) {
    // 赵磊 is not on duty: he is among the other volunteers, folded away.
    const zhao = co.getByLabel('赵磊');
    if (!(await zhao.isVisible())) await co.locator('#dispatch-form details summary').click();
    await zhao.check();
    await shot(co, 'coordinator-manual-dispatch');
    await assignButton.click();
    await co.waitForURL(`${BASE}/board/orders/${second.id}`);
  }
  await co.waitForFunction(() => document.querySelector('#order-state')?.dataset.state !== 'submitted');
  await shot(co, 'coordinator-dispatched');
  // The order's page: its log in words, its offers, and (now that 赵磊 has
  // it) a reassign form; the coordinator hands it to 李伟 after a call.
  await co.goto(`${BASE}/board/orders/${second.id}`);
  await co.waitForFunction(() => document.querySelector('#order-state')?.dataset.state === 'assigned');
  assert.ok((await co.locator('#log li').count()) >= 2, 'order log');
  await co.locator('#log', { hasText: '提交了订单' }).waitFor();
  await switchLanguage(co, 'coordinator-order');
  co.on('dialog', (d) => d.accept());
  await co.locator('#reassign-reason').fill('赵磊临时有事');
  const li = co.getByLabel('李伟');
  if (!(await li.isVisible())) await co.locator('#reassign-form details summary').click();
  await li.check();
  await shot(co, 'coordinator-reassign');
  await co.locator('#reassign-assign').click();
  await co.waitForURL(/done=reassigned/);
  await co.locator('#log', { hasText: '赵磊临时有事' }).waitFor();
  await co.locator('#log', { hasText: '收回指派以改派' }).waitFor();
  await co.locator('#assignee', { hasText: '李伟' }).waitFor();
  await shot(co, 'coordinator-reassigned');
  ids.firstOrder = orderId;
  ids.secondOrder = second.id;
  await Promise.all([reqCtx.close(), volCtx.close(), coCtx.close()]);
});

test('a volunteer without the assignment cannot see the address through any page', async () => {
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  await signIn(page, '13800000005');
  // Order 1 went to the other volunteer; this one may have order 2.
  const id = ids.firstOrder;
  for (const path of [`/assignments/${id}`, `/orders/${id}`, `/board/orders/${id}`, `/live/orders/${id}`]) {
    const res = await page.goto(BASE + path);
    assert.ok([403, 404].includes(res.status()), `${path} answered ${res.status()}`);
    const html = await page.content();
    assert.ok(!html.includes('中山东路321号'), `${path} shows the address`);
    assert.ok(!html.includes('13912345678'), `${path} shows the phone`);
  }
  await shot(page, 'privacy-volunteer-404');
  await ctx.close();
});

test("a coordinator cannot reach another county's order by editing the URL", async () => {
  const ctx = await browser.newContext({ locale: 'zh-CN' });
  const page = await ctx.newPage();
  await signIn(page, '13800000003');
  for (const id of [ids.firstOrder, ids.secondOrder]) {
    for (const path of [`/board/orders/${id}`, `/orders/${id}`, `/assignments/${id}`, `/live/orders/${id}`]) {
      const res = await page.goto(BASE + path);
      assert.ok([403, 404].includes(res.status()), `${path} answered ${res.status()}`);
      const html = await page.content();
      assert.ok(!html.includes('中山东路321号') && !html.includes('北京东路41号'), `${path} leaks the address`);
    }
  }
  await page.goto(BASE + '/board');
  assert.equal(await page.locator('[data-order]').count(), 0, 'other county orders on the board');
  await shot(page, 'privacy-coordinator-other-county');
  await ctx.close();
});

test('a liaison verifies a staff member and orders on their behalf', async () => {
  const admin = await login(process.env.HF_ADMIN_PHONE, process.env.HF_ADMIN_PASSWORD);
  const employer = await api(admin, 'POST', '/api/v1/org-units', {
    kind: 'employer', name: '江苏省人民医院', parent_id: ids.xuanwu,
  });
  await api(admin, 'POST', '/api/v1/users', {
    phone: '13800000006', display_name: '孙丽', password: PASSWORD,
    grants: [{ role: 'liaison', org_unit_id: employer.id }],
  });
  const ctx = await phoneContext();
  const page = await ctx.newPage();
  await signIn(page, '13800000006');
  assert.equal(new URL(page.url()).pathname, '/liaison');
  await switchLanguage(page, 'liaison-home');
  await page.locator('#verify-phone').fill('13800000001');
  await page.getByLabel(/科室/).fill('呼吸科');
  await page.locator('#verify').click();
  await page.waitForURL(/verified=1/);
  await page.locator('#staff', { hasText: '138 0000 0001' }).waitFor();
  await shot(page, 'liaison-verified');
  await page.locator('#staff a.button').first().click();
  await page.waitForURL(/\/liaison\/order\?household=/);
  await page.getByLabel(/王建国/).check();
  await page.locator('#liaison-item').selectOption({ label: '买菜送菜' });
  await shot(page, 'liaison-order-form');
  await page.locator('#place-order').click();
  await page.waitForURL(/\/orders\/\d+$/);
  const id = Number(new URL(page.url()).pathname.split('/').pop());
  await shot(page, 'liaison-order-placed');
  await page.goto(`${BASE}/liaison`);
  await page.locator(`#liaison-orders [data-order="${id}"]`).waitFor();
  await shot(page, 'liaison-orders');
  await ctx.close();
});
