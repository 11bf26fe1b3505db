"""socketio_client drives wsmatrix serve's Socket.IO contract with Debian's
python3-socketio client (python-socketio 5):

    /usr/bin/python3 interop/socketio_client.py URL [polling|websocket]

echo (acknowledged with the same arguments, binary included), join, say
(said comes back), then a clean disconnect.
"""
import sys
import threading

import socketio

url = sys.argv[1]
transports = [sys.argv[2]] if len(sys.argv) > 2 else None

sio = socketio.Client(reconnection=False)
said = threading.Event()
heard = []


@sio.on('said')
def on_said(msg):
    heard.append(msg)
    said.set()


sio.connect(url, transports=transports, wait_timeout=10)
try:
    args = (1, 'two', {'three': [3]}, None, True)
    got = sio.call('echo', args, timeout=10)
    assert list(got) == list(args), got
    got = sio.call('echo', ('bytes', b'\x00\x01\xff'), timeout=10)
    assert got[0] == 'bytes' and bytes(got[1]) == b'\x00\x01\xff', got
    assert sio.call('join', 'py-room', timeout=10) is True
    assert sio.call('say', ('py-room', 'hello from python ✓'), timeout=10) is True
    assert said.wait(10), 'no said'
    assert heard == ['hello from python ✓'], heard
    print('ok:', sio.transport(), sio.get_sid())
finally:
    sio.disconnect()
