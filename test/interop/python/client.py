"""Python websockets client against a sockeye server.

Usage: client.py URL SCENARIO, SCENARIO one of:
  messages      echo of text, binary, 4 MiB binary, 4 MiB text; then close 1000
  ping          ping with a payload, wait for its pong; then close 4001 'bye'
  server-close  ask the server to ping us and close with 4002; wait for the close
"""

import asyncio
import os
import sys

import websockets

from common import LIFETIME_S, STEP_TIMEOUT_S, BIG, big_text, describe, report


async def echo(ws, label, payload):
    await ws.send(payload)
    reply = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)
    report("echo", label=label, sent=describe(payload), received=describe(reply))


async def run(url, scenario):
    # max_size=None: python's default limit (1 MiB) would refuse the 4 MiB echoes with 1009.
    # ping_interval=None: no automatic keepalive pings, so every ping on the wire is the test's.
    # compression: 'messages' offers nothing; the others keep python's default
    # permessage-deflate offer, which the server must answer correctly either way.
    options = dict(max_size=None, ping_interval=None, open_timeout=STEP_TIMEOUT_S, close_timeout=5)
    if scenario == "messages":
        options["compression"] = None
    async with websockets.connect(url, **options) as ws:
        report("open", extensions=[type(e).__name__ for e in ws.extensions], subprotocol=ws.subprotocol)
        if scenario == "messages":
            await echo(ws, "text", "hello from python websockets \u2713")
            await echo(ws, "binary", bytes(range(256)) * 4)
            await echo(ws, "big-binary", os.urandom(BIG))
            await echo(ws, "big-text", big_text())
            await ws.close(1000)
        elif scenario == "ping":
            pong_waiter = await ws.ping(b"py-ping")
            latency = await asyncio.wait_for(pong_waiter, STEP_TIMEOUT_S)
            report("pong", payload="py-ping", latency=latency)
            await ws.close(4001, "bye")
        elif scenario == "server-close":
            await ws.send("ping me")
            received = []
            try:
                while True:
                    received.append(describe(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)))
            except websockets.ConnectionClosed:
                pass
            report("messages", received=received)
        else:
            raise SystemExit(f"unknown scenario {scenario!r}")
        await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT_S)
        # close_code / close_reason: what the server's close frame carried (RFC 6455 section 7.1.5/7.1.6).
        report("closed", code=ws.close_code, reason=ws.close_reason)


def main():
    url, scenario = sys.argv[1], sys.argv[2]
    asyncio.run(asyncio.wait_for(run(url, scenario), LIFETIME_S))


if __name__ == "__main__":
    main()
