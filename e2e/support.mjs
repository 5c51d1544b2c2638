// Shared by the browser tests: the JSON API for seeding, signing in, the
// interface texts a language check reads, and how Chromium is launched.
import { after } from 'node:test';
import { chromium } from 'playwright-core';

export const BASE = process.env.HF_BASE;
export const SHOTS = process.env.HF_SHOTS || '../target/e2e';
export const PHONE = { width: 390, height: 844 };
export const CJK = /[\u4e00-\u9fff]/;

/** A JSON API call; throws with the answer on any non-2xx status. */
export async function api(token, method, path, body, extra = {}) {
  const res = await fetch(BASE + path, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...extra,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return json;
}

/** A bearer token for the account. */
export async function login(phone, password) {
  return (await api(null, 'POST', '/api/v1/auth/login', { phone, password })).token;
}

/** Signs in through the login form and waits to leave it. */
export async function signIn(page, phone, password) {
  await page.goto(BASE + '/login');
  await page.getByLabel(/手机号|Mobile number/).fill(phone);
  await page.getByLabel(/密码|Password/).fill(password);
  await page.locator('form[action="/login"] button[type=submit]').click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

/** Visible text nodes outside `translate="no"` (data: names, places). */
export async function uiTexts(page) {
  return page.evaluate(() => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const n = walker.currentNode;
      const el = n.parentElement;
      if (!n.textContent.trim() || el.closest('[translate="no"], script, style, [hidden]')) continue;
      out.push(n.textContent.trim());
    }
    return out;
  });
}

/** What the Content-Security-Policy blocked on any page, as Chromium reports it. */
export const cspViolations = [];

function watchCsp(page) {
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(`${page.url()}: ${m.text()}`);
  });
}

// Every test file fails when the policy blocked anything: a page that
// needs what the CSP refuses is broken for its users.
after(() => {
  if (cspViolations.length) throw new Error(`CSP violations:\n${cspViolations.join('\n')}`);
});

/** Debian's Chromium, headless, with nothing fetched from the internet;
 * every page it opens is watched for CSP violations. */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...args) => {
    const context = await newContext(...args);
    context.on('page', watchCsp);
    return context;
  };
  return browser;
}
