"""Python websockets echo server with permessage-deflate for sockeye's client.

Usage: deflate_server.py VARIANT
  default      python's own server settings (server_max_window_bits=12,
               client_max_window_bits=12, memLevel 5), context takeover
  no-takeover  the same, plus server_no_context_takeover and
               client_no_context_takeover in every answer

Listens on 127.0.0.1, port 0, and reports {"event": "listening", "port": N}.
Reports every connection's negotiated extensions ("open"), every message it
receives (type, length, SHA-256) before echoing it with its type, and every
close. Exits when stdin reaches EOF (or after LIFETIME_S at the latest).
"""

import asyncio
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from deflate_common import LIFETIME_S, describe, describe_extensions, report


async def handler(ws):
    path = ws.path
    report("open", path=path, extensions=describe_extensions(ws.extensions))
    try:
        async for message in ws:
            report("received", path=path, message=describe(message))
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    report("closed", path=path, code=ws.close_code, reason=ws.close_reason)


async def stdin_eof():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def run(variant):
    no_takeover = variant == "no-takeover"
    if variant not in ("default", "no-takeover"):
        raise SystemExit(f"unknown variant {variant!r}")
    factory = ServerPerMessageDeflateFactory(
        server_no_context_takeover=no_takeover,
        client_no_context_takeover=no_takeover,
        server_max_window_bits=12,
        client_max_window_bits=12,
        compress_settings={"memLevel": 5},
    )
    # max_size=None: accept the 16 MiB messages (default limit 1 MiB).
    async with websockets.serve(
        handler, "127.0.0.1", 0, max_size=None, ping_interval=None, close_timeout=10, compression=None, extensions=[factory]
    ) as server:
        report("listening", port=server.sockets[0].getsockname()[1])
        try:
            await asyncio.wait_for(stdin_eof(), LIFETIME_S)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1]))
