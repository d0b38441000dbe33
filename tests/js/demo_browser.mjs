// Drives the Pricewatch demo page (examples/pricewatch/web) in headless Chromium -- the machine's own build, through
// playwright-core, never a browser Playwright downloads -- for tests/integration/test_demo_browser.py.
//
// Input: one JSON argument: chromium (path), page_url, other_origin_url (the same page under another host name,
// mapped to 127.0.0.1 by --host-resolver-rules, so another origin on the same router), other_origin_host, authid,
// password, wrong_password, token, unknown_symbol, screenshots (paths), timeout (s).
// Output: ONE line of JSON with what the page showed at each step; the Python test checks it exactly against the
// backend's record of what it published. Diagnostics go to stderr.

import { launch, liveBoard, openPage, quote, report, signIn, signInOutcome, text, updatesAtLeast }
  from './demo_page.mjs';

const config = JSON.parse(process.argv[2]);

async function run() {
  const browser = await launch(config.chromium, `MAP ${config.other_origin_host} 127.0.0.1`);
  const result = { page_errors: [] };
  try {
    const page = await openPage(browser, config.page_url, result.page_errors);
    result.title = await page.title();

    await signIn(page, { authid: config.authid, password: config.wrong_password });
    result.wrong_password = await signInOutcome(page);

    await signIn(page, { authid: config.authid, password: config.password });
    result.ticket = await signInOutcome(page);
    result.ticket_transport = await page.locator('#transport').textContent();
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

await report(config.timeout, run);
