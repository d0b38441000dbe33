// Drives the Pricewatch demo page (examples/pricewatch/web) in headless Chromium with WebSocket taken away before
// any of the page's scripts run (`delete window.WebSocket`, as in a browser without it), so Autobahn|JS cannot
// create the WebSocket transport and falls back to long-poll; for tests/integration/test_demo_longpoll_browser.py.
//
// Input: one JSON argument: chromium (path), page_url, other_origin_url (the same page under another host name,
// mapped to 127.0.0.1), other_origin_host, authid, password, timeout (s).
// Output: ONE line of JSON with what the page showed at each step. Diagnostics go to stderr.

import { launch, liveBoard, openPage, quote, report, signIn, signInOutcome, text, visible }
  from './demo_page.mjs';

const config = JSON.parse(process.argv[2]);

function withoutWebSocket() {
  delete window.WebSocket;
}

// What the page says about its connection, and whether it can see WebSocket at all.
async function connectionShown(page) {
  return page.evaluate(() => ({
    line: document.getElementById('transport').textContent,
    type: document.getElementById('transport').dataset.transport || null,
    websocket_in_window: 'WebSocket' in window,
  }));
}

async function signOut(page) {
  await page.click('#logout');
  await page.waitForFunction(() => !document.getElementById('login').hidden);
  return {
    status: await text(page, '#status'),
    error: await page.locator('#login-error').textContent(),
    board_visible: await visible(page, '#board-section'),
  };
}

async function run() {
  const browser = await launch(config.chromium, `MAP ${config.other_origin_host} 127.0.0.1`);
  const result = { page_errors: [] };
  try {
    const page = await openPage(browser, config.page_url, result.page_errors, withoutWebSocket);
    await signIn(page, { authid: config.authid, password: config.password });
    result.ticket = await signInOutcome(page);
    result.connection = await connectionShown(page);
    result.board = await liveBoard(page);
    result.quote = await quote(page, 'WGT');
    result.signed_out = await signOut(page);

    const otherPage = await openPage(browser, config.other_origin_url, result.page_errors, withoutWebSocket);
    await signIn(otherPage, { authid: config.authid, password: config.password });
    result.other_origin = await signInOutcome(otherPage);
  } finally {
    await browser.close();
  }
  return result;
}

await report(config.timeout, run);
