// What the Pricewatch drivers (demo_browser.mjs, demo_longpoll_browser.mjs) do with the demo page: launch the
// machine's Chromium through playwright-core, open the page, sign in, and read the board, the quote and the
// sign-in outcome as the page shows them.

import { chromium } from 'playwright-core';

export const STEP_TIMEOUT = 15000;

export const text = (page, selector) => page.locator(selector).innerText();
export const visible = (page, selector) => page.locator(selector).isVisible();

// `hostRules`: extra --host-resolver-rules (another host name mapped to 127.0.0.1), or none.
export function launch(executablePath, hostRules) {
  const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync'];
  if (hostRules) args.push(`--host-resolver-rules=${hostRules}`);
  return chromium.launch({ executablePath, headless: true, args });
}

// `initScript`: a function run in the page before any of its own scripts (e.g. to take WebSocket away), or none.
export async function openPage(browser, url, pageErrors, initScript) {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 }, deviceScaleFactor: 1 });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => process.stderr.write(`[${url} console.${message.type()}] ${message.text()}\n`));
  await page.goto(url);
  return page;
}

export async function signIn(page, { authid, password, token }) {
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
export async function signInOutcome(page) {
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

export const updatesAtLeast = (n) => (parseInt(document.getElementById('updates').textContent, 10) || 0) >= n;

// Wait until every symbol has had a tick, read the board, wait for four more ticks, read it again.
export async function liveBoard(page) {
  await page.waitForFunction(
    () => [...document.querySelectorAll('#board .seq')].every((cell) => cell.textContent !== '\u2013'));
  const first = await boardState(page);
  await page.waitForFunction(updatesAtLeast, (parseInt(first.updates_line, 10) || 0) + 4);
  const later = await boardState(page);
  return { first, later };
}

export async function quote(page, symbol) {
  await page.fill('#quote-symbol', symbol);
  await page.click('#quote-button');
  await page.waitForFunction(() => document.getElementById('quote-result').textContent !== ''
    || document.getElementById('quote-error').textContent !== '');
  return {
    result: await page.locator('#quote-result').textContent(),
    error: await page.locator('#quote-error').textContent(),
  };
}

// Print the driver's one line of JSON (or its failure) and exit; give up after `timeout` seconds.
export async function report(timeout, run) {
  setTimeout(() => {
    process.stdout.write(JSON.stringify({ failure: `no complete answer within ${timeout} s` }) + '\n');
    process.exit(3);
  }, timeout * 1000);
  try {
    process.stdout.write(JSON.stringify(await run()) + '\n');
    process.exit(0);
  } catch (error) {
    process.stdout.write(JSON.stringify({ failure: String(error && error.stack ? error.stack : error) }) + '\n');
    process.exit(2);
  }
}
