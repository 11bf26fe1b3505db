"""websockets_echo connects with Debian's python3-websockets, compression
configured from the command line, and checks that messages come back; it
prints the negotiated extensions.

    /usr/bin/python3 interop/websockets_echo.py ws://127.0.0.1:PORT/echo 9
"""
import asyncio
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory


async def main(url, bits):
    kwargs = {}
    if bits:
        kwargs["extensions"] = [ClientPerMessageDeflateFactory(
            server_max_window_bits=bits, client_max_window_bits=bits, compress_settings={"memLevel": 4})]
    async with websockets.connect(url, compression="deflate" if not bits else None, **kwargs) as ws:
        text = json.dumps({"event": "tick", "user": "ada", "text": "héllo wörld ✓"})
        messages = [text, text * 40, text * 3000, b"\x00\x01" * 600]
        for m in messages:
            await ws.send(m)
            got = await ws.recv()
            if got != m:
                sys.exit(f"echo of {len(m)} bytes differs: {len(got)} bytes")
        print(json.dumps({"extensions": [type(e).__name__ + repr(vars(e)) for e in ws.extensions]}))


asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
