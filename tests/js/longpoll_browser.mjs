// Loads pages in headless Chromium (the machine's own build, through playwright-core) and reads what each page
// wrote into its #result element, for tests/integration/test_longpoll_browser.py. The pages themselves (written by
// the test) disable WebSocket and join over Autobahn|JS's long-poll fallback.
//
// Input: one JSON argument: chromium (path), urls (pages to load in turn), timeout (s). Output: ONE line of JSON:
// {"results": [<each page's #result text>], "page_errors": [...]}.

import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const STEP_TIMEOUT = 20000;

setTimeout(() => {
  process.stdout.write(JSON.stringify({ failure: `no complete answer within ${config.timeout} s` }) + '\n');
  process.exit(3);
}, config.timeout * 1000);

async function resultOf(browser, url, pageErrors) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    page.on('console', (message) => process.stderr.write(`[${url} console.${message.type()}] ${message.text()}\n`));
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('result').textContent !== 'pending');
    return await page.locator('#result').textContent();
  } finally {
    await context.close();
  }
}

async function run() {
  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const report = { results: [], page_errors: [] };
  try {
    for (const url of config.urls) {
      report.results.push(await resultOf(browser, url, report.page_errors));
    }
  } finally {
    await browser.close();
  }
  return report;
}

try {
  process.stdout.write(JSON.stringify(await run()) + '\n');
  process.exit(0);
} catch (error) {
  process.stdout.write(JSON.stringify({ failure: String(error && error.stack ? error.stack : error) }) + '\n');
  process.exit(2);
}
