#!/usr/bin/env node
// socketio-server is the Node.js Socket.IO server (npm socket.io 4) as a
// peer of `wsmatrix bench --scenario=socketio-*`: namespace "/", "echo"
// acknowledged with its arguments. It logs "msg=listening addr=HOST:PORT".
//
//   interop/socketio-server.mjs --addr=127.0.0.1:0
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const arg = process.argv.find((a) => a.startsWith('--addr=')) || '--addr=127.0.0.1:0';
const [host, port] = arg.slice('--addr='.length).split(':');
const http = createServer();
const io = new Server(http);
io.on('connection', (socket) => {
  socket.on('echo', (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    if (ack) ack(...args);
  });
});
http.listen(Number(port), host, () => {
  const a = http.address();
  process.stderr.write(`msg=listening addr=${a.address}:${a.port}\n`);
});
const stop = () => { io.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
