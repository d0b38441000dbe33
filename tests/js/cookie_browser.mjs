// Cookie authentication in headless Chromium (the machine's own, through playwright-core) with Autobahn|JS, for
// tests/integration/test_cookie_browser.py. The page (tests/integration/cookie_page, served by the router's own
// listener) logs in with window.wampLogin; this script runs the steps and prints ONE line of JSON with what each
// gave, plus what the page's JavaScript can see of the cookie (nothing: it is HttpOnly).
//
// Input: one JSON argument: chromium (path), page_url, authid, ticket, timeout (s).

import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);

setTimeout(() => {
  process.stdout.write(JSON.stringify({ failure: `no complete answer within ${config.timeout} s` }) + '\n');
  process.exit(3);
}, config.timeout * 1000);

async function run() {
  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const result = { page_errors: [] };
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (error) => result.page_errors.push(String(error)));
    page.on('console', (message) => process.stderr.write(`[console.${message.type()}] ${message.text()}\n`));
    await page.goto(config.page_url);
    const login = (options) => page.evaluate((o) => window.wampLogin(o), options);
    const both = { realm: 'realm1', authmethods: ['cookie', 'ticket'], authid: config.authid };

    result.first = await login({ ...both, ticket: config.ticket });
    result.page_sees_cookie = await page.evaluate(() => document.cookie);
    result.cookies = (await context.cookies()).map((c) => ({ name: c.name, path: c.path, httpOnly: c.httpOnly,
                                                              sameSite: c.sameSite, secure: c.secure }));
    result.again = await login({ ...both });                       // no ticket to give: only the cookie can do
    result.without_realm = await login({ realm: null, authmethods: ['cookie'] });
    result.logout = await login({ realm: 'realm1', authmethods: ['cookie'], leaveReason: 'wamp.close.logout' });
    result.after_logout = await login({ realm: 'realm1', authmethods: ['cookie'] });
    result.after_logout_with_ticket = await login({ ...both });    // the ticket challenge comes, and is not answered
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

run().catch((error) => {
  process.stdout.write(JSON.stringify({ failure: String(error && error.stack || error) }) + '\n');
  process.exit(2);
});
