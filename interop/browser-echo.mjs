// browser-echo loads the demo page in Chromium, types a line, and checks
// that it is echoed: sent lines red, received lines blue.
//
//   node interop/browser-echo.mjs http://127.0.0.1:PORT/ screenshot.png
import { chromium } from 'playwright-core';

const [url, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => window.socketOpen === true, null, { timeout: 10000 });
  for (const line of ['hello from chromium', 'ünïcödé ✓']) {
    await page.fill('#text', line);
    await page.press('#text', 'Enter');
    await page.waitForSelector(`#log span:text-is("<<< ${line}")`, { timeout: 10000 });
  }
  const big = 'ünïcödé ✓ '.repeat(500); // compressible, over the server's threshold
  await page.fill('#text', big);
  await page.press('#text', 'Enter');
  await page.waitForSelector(`#log span:text-is("<<< ${big}")`, { timeout: 10000 });
  const extensions = await page.evaluate(() => window.socketExtensions);
  await page.evaluate(() => { for (const s of [...document.querySelectorAll('#log span, #log br')].slice(8)) s.remove(); });
  const spans = await page.$$eval('#log span', (els) => els.map((e) => [e.textContent, getComputedStyle(e).color]));
  await page.screenshot({ path: shot });
  const want = [
    ['>>> hello from chromium', 'rgb(255, 0, 0)'], ['<<< hello from chromium', 'rgb(0, 0, 255)'],
    ['>>> ünïcödé ✓', 'rgb(255, 0, 0)'], ['<<< ünïcödé ✓', 'rgb(0, 0, 255)'],
  ];
  if (JSON.stringify(spans) !== JSON.stringify(want)) {
    throw new Error(`log ${JSON.stringify(spans)}, want ${JSON.stringify(want)}`);
  }
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  console.log(`ok: ${spans.length} lines, extensions "${extensions}", screenshot ${shot}`);
} finally {
  await browser.close();
}
