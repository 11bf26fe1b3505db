// ws-echo connects with the npm ws package, permessage-deflate configured
// from the command line, sends messages and checks that each comes back;
// it prints the negotiated extensions and the bytes on the wire.
//
//   node interop/ws-echo.mjs ws://127.0.0.1:PORT/echo '{"serverMaxWindowBits":9}'
import WebSocket from 'ws';

const [url, optsJSON = '{}'] = process.argv.slice(2);
const pmd = JSON.parse(optsJSON);
const ws = new WebSocket(url, { perMessageDeflate: pmd === false ? false : { threshold: 0, ...pmd } });
const fail = (msg) => { console.error(msg); process.exit(1); };
setTimeout(() => fail('timed out'), 15000).unref();

const json = JSON.stringify({ event: 'tick', user: 'ada', text: 'héllo wörld ✓' });
const messages = [json, json.repeat(30), json.repeat(2000), 'x', Buffer.from(json.repeat(50))];
let i = 0;
let sent = 0;
ws.on('open', () => {
  for (const m of messages) {
    sent += Buffer.byteLength(m);
    ws.send(m);
  }
});
ws.on('message', (data, isBinary) => {
  const want = messages[i];
  const ok = isBinary ? Buffer.compare(data, want) === 0 : data.toString() === want;
  if (!ok) fail(`message ${i}: got ${data.length} bytes, want ${Buffer.byteLength(want)}`);
  i++;
  if (i === messages.length) {
    console.log(JSON.stringify({
      extensions: ws.extensions,
      payload: sent,
      wireOut: ws._socket.bytesWritten,
      wireIn: ws._socket.bytesRead,
    }));
    ws.close(1000);
  }
});
ws.on('close', (code) => { if (i !== messages.length) fail(`closed ${code} after ${i} messages`); });
ws.on('error', (e) => fail(String(e)));
