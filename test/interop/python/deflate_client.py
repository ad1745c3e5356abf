"""Python websockets client with permessage-deflate against a sockeye server.

Usage: deflate_client.py URL VARIANT
  default      compression="deflate" (python's own offer: client_max_window_bits, memLevel 5)
  no-takeover  server_no_context_takeover, client_no_context_takeover,
               server_max_window_bits=10, client_max_window_bits=11

Sends text and binary messages of every size in SIZES (1 byte to 16 MiB),
each after the echo of the one before, and reports both the sent and the
received message (type, length, SHA-256). Then closes with 1000.
"""

import asyncio
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from deflate_common import LIFETIME_S, SIZES, STEP_TIMEOUT_S, describe, describe_extensions, make_binary, make_text, report


async def run(url, variant):
    # max_size=None: python's default limit (1 MiB) would refuse the 16 MiB echoes with 1009.
    # ping_interval=None: no keepalive pings of its own.
    options = dict(max_size=None, ping_interval=None, open_timeout=STEP_TIMEOUT_S, close_timeout=10)
    if variant == "default":
        options["compression"] = "deflate"
    elif variant == "no-takeover":
        options["compression"] = None
        options["extensions"] = [
            ClientPerMessageDeflateFactory(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=10,
                client_max_window_bits=11,
                compress_settings={"memLevel": 5},
            )
        ]
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    async with websockets.connect(url, **options) as ws:
        report("open", extensions=describe_extensions(ws.extensions), response_extensions=ws.response_headers.get("Sec-WebSocket-Extensions"))
        seed = 1
        for size in SIZES:
            for kind in ("text", "binary"):
                payload = make_text(size, seed) if kind == "text" else make_binary(size)
                seed += 1
                await ws.send(payload)
                reply = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)
                report("echo", label=f"{kind}-{size}", sent=describe(payload), received=describe(reply))
        await ws.close(1000)
        await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT_S)
        report("closed", code=ws.close_code, reason=ws.close_reason)


def main():
    url, variant = sys.argv[1], sys.argv[2]
    asyncio.run(asyncio.wait_for(run(url, variant), LIFETIME_S))


if __name__ == "__main__":
    main()
