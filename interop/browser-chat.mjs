// browser-chat opens the demo page of two servers in two Chromium pages,
// joins the same room on both and chats: each line reaches both pages,
// whichever server each page is on (the servers share rooms through Redis).
//
//   node interop/browser-chat.mjs http://127.0.0.1:A/ http://127.0.0.1:B/ ROOM shot-a.png shot-b.png
import { chromium } from 'playwright-core';

const [urlA, urlB, room, shotA, shotB] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync'],
});
try {
  const errors = [];
  const open = async (url, name) => {
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await page.fill('#room', room);
    await page.fill('#name', name);
    await page.click('#join button');
    await page.waitForFunction((r) => window.chatRoom === r, room, { timeout: 10000 });
    return page;
  };
  const a = await open(urlA, 'alice');
  const b = await open(urlB, 'bob');
  const say = async (page, text) => {
    await page.fill('#say', text);
    await page.press('#say', 'Enter');
  };
  const sees = (page, line) => page.waitForFunction((l) => window.chatLines.includes(l), line, { timeout: 10000 });
  await say(a, 'hello from A');
  await sees(a, 'alice: hello from A');
  await sees(b, 'alice: hello from A');
  await say(b, 'hi from B ✓');
  await sees(b, 'bob: hi from B ✓');
  await sees(a, 'bob: hi from B ✓');
  const linesA = await a.evaluate(() => window.chatLines);
  const linesB = await b.evaluate(() => window.chatLines);
  await a.screenshot({ path: shotA });
  await b.screenshot({ path: shotB });
  const want = ['alice: hello from A', 'bob: hi from B ✓'];
  for (const [who, lines] of [['A', linesA], ['B', linesB]]) {
    if (JSON.stringify(lines) !== JSON.stringify(want)) {
      throw new Error(`page ${who} saw ${JSON.stringify(lines)}, want ${JSON.stringify(want)}`);
    }
  }
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  console.log(`ok: both pages saw ${JSON.stringify(want)}, screenshots ${shotA} ${shotB}`);
} finally {
  await browser.close();
}
