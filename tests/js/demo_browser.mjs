// Drives the Pricewatch demo page (examples/pricewatch/web) in headless Chromium -- the machine's own build, through
// playwright-core, never a browser Playwright downloads -- for tests/integration/test_demo_browser.py.
//
// Input: one JSON argument: chromium (path), page_url, other_origin_url (the same page under another host name,
// mapped to 127.0.0.1 by --host-resolver-rules, so another origin on the same router), other_origin_host, authid,
// password, wrong_password, token, unknown_symbol, screenshots (paths), timeout (s).
// Output: ONE line of JSON with what the page showed at each step; the Python test checks it exactly against the
// backend's record of what it published. Diagnostics go to stderr.

import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const STEP_TIMEOUT = 15000;

setTimeout(() => {
  process.stdout.write(JSON.stringify({ failure: `no complete answer within ${config.timeout} s` }) + '\n');
  process.exit(3);
}, config.timeout * 1000);

const text = (page, selector) => page.locator(selector).innerText();
const visible = (page, selector) => page.locator(selector).isVisible();

async function openPage(browser, url, pageErrors) {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => process.stderr.write(`[${url} console.${message.type()}] ${message.text()}\n`));
  await page.goto(url);
  return page;
}

async function signIn(page, { authid, password, token }) {
  if (token !== undefined) {
    await page.check('#method-jwt');
    await page.fill('#token', token);
  } else {
    await page.check('#method-ticket');
    await page.fill('#authid', authid);
    await page.fill('#password', password);
  }
  await page.click('#login-button');
}

// Wait for sign-in to end, either way: the board shows, or the error line has text.
async function signInOutcome(page) {
  await page.waitForFunction(() => !document.getElementById('board-section').hidden
    || document.getElementById('login-error').textContent !== '');
  return {
    status: await text(page, '#status'),
    error: await page.locator('#login-error').textContent(),
    board_visible: await visible(page, '#board-section'),
  };
}

// The rows and the update counter, read in one turn of the page's event loop so they belong together.
async function boardState(page) {
  return page.evaluate(() => ({
    rows: [...document.querySelectorAll('#board tbody tr')].map((row) => ({
      symbol: row.dataset.symbol,
      price: row.querySelector('.price').textContent,
      change: row.querySelector('.change').textContent,
      seq: row.querySelector('.seq').textContent,
    })),
    updates_line: document.getElementById('updates').textContent,
  }));
}

const updatesAtLeast = (n) => (parseInt(document.getElementById('updates').textContent, 10) || 0) >= n;

// Wait until every symbol has had a tick, read the board, wait for four more ticks, read it again.
async function liveBoard(page) {
  await page.waitForFunction(
    () => [...document.querySelectorAll('#board .seq')].every((cell) => cell.textContent !== '\u2013'));
  const first = await boardState(page);
  await page.waitForFunction(updatesAtLeast, (parseInt(first.updates_line, 10) || 0) + 4);
  const later = await boardState(page);
  return { first, later };
}

async function quote(page, symbol) {
  await page.fill('#quote-symbol', symbol);
  await page.click('#quote-button');
  await page.waitForFunction(() => document.getElementById('quote-result').textContent !== ''
    || document.getElementById('quote-error').textContent !== '');
  return {
    result: await page.locator('#quote-result').textContent(),
    error: await page.locator('#quote-error').textContent(),
  };
}

async function run() {
  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync',
           `--host-resolver-rules=MAP ${config.other_origin_host} 127.0.0.1`],
  });
  const result = { page_errors: [] };
  try {
    const page = await openPage(browser, config.page_url, result.page_errors);
    result.title = await page.title();

    await signIn(page, { authid: config.authid, password: config.wrong_password });
    result.wrong_password = await signInOutcome(page);

    await signIn(page, { authid: config.authid, password: config.password });
    result.ticket = await signInOutcome(page);
    result.board = await liveBoard(page);
    result.quote = await quote(page, 'WGT');
    for (const path of config.screenshots) {
      await page.screenshot({ path, fullPage: true });
    }
    result.unknown_quote = await quote(page, config.unknown_symbol);

    const jwtPage = await openPage(browser, config.page_url, result.page_errors);
    await signIn(jwtPage, { token: config.token });
    result.jwt = await signInOutcome(jwtPage);
    await jwtPage.waitForFunction(updatesAtLeast, 1);
    result.jwt.updates_line = await text(jwtPage, '#updates');

    const otherPage = await openPage(browser, config.other_origin_url, result.page_errors);
    result.other_origin_title = await otherPage.title();
    await signIn(otherPage, { authid: config.authid, password: config.password });
    result.other_origin = await signInOutcome(otherPage);
  } finally {
    await browser.close();
  }
  return result;
}

try {
  process.stdout.write(JSON.stringify(await run()) + '\n');
  process.exit(0);
} catch (error) {
  process.stdout.write(JSON.stringify({ failure: String(error && error.stack ? error.stack : error) }) + '\n');
  process.exit(2);
}
