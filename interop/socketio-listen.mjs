// socketio-listen joins ROOM on a wsmatrix serve and prints the first
// EVENT it receives, then exits:
//
//   node interop/socketio-listen.mjs URL ROOM EVENT
import { io } from 'socket.io-client';

const [url, room, event] = process.argv.slice(2);
const s = io(url, { reconnection: false });
setTimeout(() => { console.log('timeout'); process.exit(1); }, 15000);
s.on('connect', async () => {
  await s.timeout(5000).emitWithAck('join', room);
  console.log('joined');
});
s.on(event, (...args) => {
  console.log(`${event}: ${args.map((a) => JSON.stringify(a)).join(' ')}`);
  s.disconnect();
  process.exit(0);
});
