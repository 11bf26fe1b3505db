// socketio-reconnect connects to URL with socket.io-client's automatic
// reconnection, prints "connected N" on each connection (the test restarts
// the server in between), checks the echo each time, and exits after the
// second one.
//
//   node interop/socketio-reconnect.mjs URL
import { io } from 'socket.io-client';

const [url] = process.argv.slice(2);
const s = io(url, { reconnectionDelay: 100, reconnectionDelayMax: 500 });
let n = 0;
setTimeout(() => { console.log('timeout'); process.exit(1); }, 30000).unref();
s.on('connect', async () => {
  n++;
  const got = await s.timeout(5000).emitWithAck('echo', `hello ${n}`);
  console.log(`connected ${n} ${got}`);
  if (n === 2) {
    s.disconnect();
    process.exit(0);
  }
});
s.on('disconnect', (reason) => console.log(`disconnected: ${reason}`));
