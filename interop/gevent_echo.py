#!/usr/bin/python3
"""gevent_echo is the Python stack of Flask-Sockets (Flask routes served by
gevent's WSGI server with gevent-websocket: a greenlet per connection) as
a peer of `wsmatrix bench`: /echo sends every message back. It logs
"msg=listening addr=HOST:PORT".

    apt-get install -y python3-flask python3-gevent python3-gevent-websocket
    interop/gevent_echo.py --addr=127.0.0.1:0

gevent-websocket checks neither UTF-8 nor a message size limit: it does
less per message than the Go servers it is compared with.
"""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from flask import Flask  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

addr = next((a[len('--addr='):] for a in sys.argv[1:] if a.startswith('--addr=')), '127.0.0.1:0')
host, port = addr.rsplit(':', 1)
app = Flask(__name__)


@app.route('/')
def index():
    return 'gevent-websocket echo at /echo'


def echo(ws):
    while True:
        msg = ws.receive()
        if msg is None:
            break
        ws.send(msg, binary=isinstance(msg, (bytes, bytearray)))


def sockets(environ, start_response):
    """Flask-Sockets' SocketMiddleware: WebSocket routes are served before
    Flask sees the request."""
    ws = environ.get('wsgi.websocket')
    if ws is not None and environ.get('PATH_INFO') == '/echo':
        echo(ws)
        return []
    return app(environ, start_response)


server = WSGIServer((host, int(port)), sockets, handler_class=WebSocketHandler, log=None)
server.start()
print(f'msg=listening addr={server.address[0]}:{server.address[1]}', file=sys.stderr, flush=True)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
server.serve_forever()
