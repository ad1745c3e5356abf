"""Helpers shared by the permessage-deflate interop peers (python-deflate.test.ts).

Each peer reports what it sees as one JSON object per line on stdout, so the
Node test asserts on the Python side's view as well as its own. Tracebacks go
to stderr, which the test prints when it fails.
"""

import hashlib
import json
import os
import sys

from websockets.extensions.permessage_deflate import PerMessageDeflate

# Every run is bounded: a peer that hangs exits on its own (the test also kills it).
LIFETIME_S = 120
STEP_TIMEOUT_S = 60

KiB = 1024
MiB = 1024 * 1024
SIZES = [1, 1000, 64 * KiB, MiB, 16 * MiB]

# Words with 1- to 4-byte UTF-8 characters: text that compresses as real text does,
# with multi-byte sequences crossing every frame and read boundary.
WORDS = ["hello", "world", "caf\u00e9", "na\u00efve", "\u20ac", "\u8a9e", "\U0001f600", "data", "{", "}", '"id":', "42,", "\n"]


def make_text(size, seed):
    """Exactly `size` UTF-8 bytes of pseudo-random words (padded with ASCII)."""
    parts = []
    n = 0
    x = seed or 1
    while True:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        w = WORDS[(x >> 16) % len(WORDS)] + " "
        b = len(w.encode("utf-8"))
        if n + b > size:
            break
        parts.append(w)
        n += b
    parts.append("x" * (size - n))
    s = "".join(parts)
    assert len(s.encode("utf-8")) == size
    return s


def make_binary(size):
    """Half random bytes (incompressible), half zeros (very compressible)."""
    half = size // 2
    return os.urandom(half) + bytes(size - half)


def as_bytes(data):
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def describe(data):
    """Type, length in bytes and SHA-256 of a message as Python sees it."""
    raw = as_bytes(data)
    return {"type": "text" if isinstance(data, str) else "binary", "len": len(raw), "sha": hashlib.sha256(raw).hexdigest()}


def describe_extensions(extensions):
    """The negotiated extensions with their agreed parameters, from Python's side."""
    out = []
    for e in extensions:
        d = {"name": e.name}
        if isinstance(e, PerMessageDeflate):
            d.update(
                remote_no_context_takeover=e.remote_no_context_takeover,
                local_no_context_takeover=e.local_no_context_takeover,
                remote_max_window_bits=e.remote_max_window_bits,
                local_max_window_bits=e.local_max_window_bits,
            )
        out.append(d)
    return out


def report(event, **fields):
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()
