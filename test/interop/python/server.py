"""Python websockets echo server for sockeye's client.

Listens on 127.0.0.1, port 0, and reports {"event": "listening", "port": N}.
Echoes every message with its type and reports each one it receives (by the
request path, so one server serves every test). The text message
'py-close-please' makes it close the connection with 4003 'py bye' instead.
When a connection ends it reports the close code and reason it received.
Exits when stdin reaches EOF (or after LIFETIME_S at the latest).
"""

import asyncio
import sys

import websockets

from common import LIFETIME_S, describe, report


async def handler(ws):
    path = ws.path
    report("open", path=path)
    try:
        async for message in ws:
            report("received", path=path, message=describe(message))
            if message == "py-close-please":
                await ws.close(4003, "py bye")
                break
            await ws.send(message)
    except websockets.ConnectionClosed:
        # A close code other than 1000/1001 surfaces as ConnectionClosedError; it is reported below.
        pass
    await ws.wait_closed()
    report("closed", path=path, code=ws.close_code, reason=ws.close_reason)


async def stdin_eof():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def run():
    # max_size=None: accept the 4 MiB messages (default limit 1 MiB).
    # ping_interval=None: no keepalive pings of its own, only answers to the client's.
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None, close_timeout=5) as server:
        report("listening", port=server.sockets[0].getsockname()[1])
        try:
            await asyncio.wait_for(stdin_eof(), LIFETIME_S)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    asyncio.run(run())
