// browser-socketio loads a page that uses the Socket.IO client from its
// CDN (served here from interop/node_modules: no network) in Chromium and
// checks Flask-SocketIO's quickstart: the page's own 'my event' on
// connect is answered with 'my response' carrying the same JSON, over the
// default transports (long-polling, then the upgrade to WebSocket), and a
// second client on WebSocket only does the same.
//
//   node interop/browser-socketio.mjs http://127.0.0.1:PORT/ screenshot.png
import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const [url, shot] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'node_modules/socket.io-client/dist/socket.io.min.js');
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
  await page.route('https://cdn.socket.io/**', (route) => route.fulfill({ path: dist, contentType: 'application/javascript' }));
  // Record every 'my response' of the page's own socket from its creation.
  await page.addInitScript(() => {
    window.responses = [];
    let s;
    Object.defineProperty(window, 'socket', {
      configurable: true,
      get() { return s; },
      set(v) { s = v; v.on('my response', (d) => window.responses.push(d)); },
    });
  });
  await page.goto(url);
  await page.waitForFunction(() => window.responses.length > 0, null, { timeout: 10000 });
  const first = await page.evaluate(() => window.responses[0]);
  if (JSON.stringify(first) !== JSON.stringify({ data: "I'm connected!" })) throw new Error(`first response ${JSON.stringify(first)}`);
  await page.waitForFunction(() => window.socket.io.engine.transport.name === 'websocket', null, { timeout: 10000 });
  const again = await page.evaluate(() => new Promise((res) => {
    window.socket.once('my response', res);
    window.socket.emit('my event', { data: 'after the upgrade ✓', n: [1, 2] });
  }));
  if (JSON.stringify(again) !== JSON.stringify({ data: 'after the upgrade ✓', n: [1, 2] })) throw new Error(`again ${JSON.stringify(again)}`);
  const wsOnly = await page.evaluate(() => new Promise((res, rej) => {
    const s = io({ transports: ['websocket'], forceNew: true });
    s.on('connect_error', rej);
    s.on('connect', () => s.emit('my event', { data: 'websocket only' }));
    s.once('my response', (d) => { res([d, s.io.engine.transport.name]); s.disconnect(); });
  }));
  if (JSON.stringify(wsOnly) !== JSON.stringify([{ data: 'websocket only' }, 'websocket'])) throw new Error(`websocket only ${JSON.stringify(wsOnly)}`);
  await page.screenshot({ path: shot });
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  console.log(`ok: ${JSON.stringify(first)} then ${JSON.stringify(again)} over ${await page.evaluate(() => window.socket.io.engine.transport.name)}, ${JSON.stringify(wsOnly)}`);
} finally {
  await browser.close();
}
