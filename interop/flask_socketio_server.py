#!/usr/bin/python3
"""flask_socketio_server is Flask-SocketIO (Debian's python3-flask-socketio)
on gevent with gevent-websocket, as a peer of `wsmatrix bench
--scenario=socketio-*`: namespace "/", "echo" acknowledged with its
arguments. It logs "msg=listening addr=HOST:PORT".

    apt-get install -y python3-flask-socketio python3-gevent python3-gevent-websocket
    interop/flask_socketio_server.py --addr=127.0.0.1:0
"""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

addr = next((a[len('--addr='):] for a in sys.argv[1:] if a.startswith('--addr=')), '127.0.0.1:0')
host, port = addr.rsplit(':', 1)

app = Flask(__name__)
socketio = SocketIO(app, async_mode='gevent', cors_allowed_origins='*')


@socketio.on('echo')
def echo(*args):
    return args


server = WSGIServer((host, int(port)), app, handler_class=WebSocketHandler, log=None)
server.start()
print(f'msg=listening addr={server.address[0]}:{server.address[1]}', file=sys.stderr, flush=True)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # serve_forever does not end on SystemExit
server.serve_forever()
