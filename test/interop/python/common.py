"""Helpers shared by the interop peers started from python-websockets.test.ts.

Each peer reports what it sees as one JSON object per line on stdout, so the
Node test can assert on the Python side's view of the connection as well as
its own. Tracebacks go to stderr, which the test prints when it fails.
"""

import hashlib
import json
import sys

# Every run is bounded: a peer that hangs exits on its own (the test also kills it).
LIFETIME_S = 30
STEP_TIMEOUT_S = 20

BIG = 4 * 1024 * 1024
# 7 ASCII bytes + U+00E9 (2) + U+20AC (3) + U+1D11E (4) = 16 UTF-8 bytes, so
# the big text message is exactly 4 MiB of UTF-8 with 2-, 3- and 4-byte
# sequences crossing every frame and read boundary.
BIG_TEXT_UNIT = "abcdefg\u00e9\u20ac\U0001d11e"
assert len(BIG_TEXT_UNIT.encode("utf-8")) == 16


def big_text():
    return BIG_TEXT_UNIT * (BIG // 16)


def as_bytes(data):
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def kind_of(data):
    return "text" if isinstance(data, str) else "binary"


def describe(data):
    """Type, length in bytes and SHA-256 of a message as Python sees it."""
    raw = as_bytes(data)
    return {"type": kind_of(data), "len": len(raw), "sha": hashlib.sha256(raw).hexdigest()}


def report(event, **fields):
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()
