// socketio-client drives wsmatrix serve's Socket.IO contract with the
// official socket.io-client (Node.js):
//
//   node interop/socketio-client.mjs URL [websocket|default] [ROOM] [URL2]
//
// echo (JSON and binary arguments, acknowledged with the same), join,
// say (said reaches this client; with URL2, a second client on another
// server in the same room gets it too), and, for the default transports,
// the upgrade from long-polling to WebSocket.
import { io } from 'socket.io-client';
import assert from 'node:assert/strict';

const [url, mode = 'default', room = 'r', url2] = process.argv.slice(2);
const opts = mode === 'websocket' ? { transports: ['websocket'] } : {};
const timeout = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error('timeout: ' + what)), ms).unref());
const connect = (u) => new Promise((res, rej) => {
  const s = io(u, { ...opts, reconnection: false, forceNew: true });
  s.on('connect', () => res(s));
  s.on('connect_error', rej);
});
const race = (p, what) => Promise.race([p, timeout(10000, what)]);
// ack resolves with every argument of the acknowledgement.
const ack = (s, ...args) => new Promise((res, rej) => {
  s.timeout(5000).emit(...args, (err, ...resp) => (err ? rej(err) : res(resp)));
});

const a = await race(connect(url), 'connect');
try {
  const args = [1, 'two', { three: [3] }, null, true];
  const echoed = await race(ack(a, 'echo', ...args), 'echo');
  assert.deepEqual(echoed, args);
  const bin = await race(ack(a, 'echo', 'bytes', Buffer.from([0, 1, 2, 255])), 'binary echo');
  assert.equal(bin[0], 'bytes');
  assert.deepEqual([...new Uint8Array(bin[1])], [0, 1, 2, 255]);
  // Binary inside an object, as socket.io-client sends it: echoed as bytes.
  const nested = await race(ack(a, 'echo', { nested: Buffer.from([7, 8]), list: [Buffer.from([9])] }, Buffer.from([5])), 'nested binary echo');
  assert.deepEqual([...new Uint8Array(nested[0].nested)], [7, 8]);
  assert.deepEqual([...new Uint8Array(nested[0].list[0])], [9]);
  assert.deepEqual([...new Uint8Array(nested[1])], [5]);
  assert.equal(await race(a.timeout(5000).emitWithAck('join', room), 'join'), true);
  let b = null;
  if (url2) {
    b = await race(connect(url2), 'connect 2');
    assert.equal(await race(b.timeout(5000).emitWithAck('join', room), 'join 2'), true);
  }
  const heard = (s) => new Promise((res) => s.once('said', res));
  const got = [heard(a)];
  if (b) got.push(heard(b));
  await race(a.timeout(5000).emitWithAck('say', room, 'hello ✓'), 'say');
  for (const m of await race(Promise.all(got), 'said')) assert.equal(m, 'hello ✓');
  // A room emit carries no binary: said with bytes is refused, not sent as a placeholder.
  assert.equal(await race(a.timeout(5000).emitWithAck('say', room, Buffer.from([1, 2, 3])), 'binary say'), false);
  if (mode !== 'websocket') {
    // The client upgrades from long-polling once the probe succeeds.
    for (let i = 0; i < 100 && a.io.engine.transport.name !== 'websocket'; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(a.io.engine.transport.name, 'websocket');
    const after = await race(ack(a, 'echo', 'after upgrade'), 'echo after upgrade');
    assert.deepEqual(after, ['after upgrade']);
  }
  if (b) b.disconnect();
  console.log(`ok: ${mode}, transport ${a.io.engine.transport.name}, sid ${a.id}`);
} finally {
  a.disconnect();
}
