"""What the Python drivers share: the client matrix's records and output lines
(e2e/client_matrix_test.go lists the commands)."""

import hashlib
import json
import sys


def key(i):
    return "k%d" % (i % 100)


def value(i):
    return "v%08d" % i


def specials():
    """The records check's records: (key or None, value, headers, timestamp ms or None)."""
    large = bytes(97 + i % 26 for i in range(900 << 10))
    return [
        ("headers", b"with headers and a timestamp", [("h1", b"one"), ("h2", b"")], 1700000000000),
        (None, b"null key", [], None),
        ("empty", b"", [], None),
        ("large", large, [], None),
    ]


def out(line):
    sys.stdout.write(line + "\n")


def print_record(k, v, headers, ts):
    v = v or b""
    out(json.dumps({
        "key": None if k is None else k.decode(),
        "value_len": len(v),
        "value_sha256": hashlib.sha256(v).hexdigest(),
        "headers": [[hk, (hv or b"").decode()] for hk, hv in (headers or [])],
        "ts": ts,
    }))


def main(commands, version):
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "version":
        out(version)
        return
    commands[cmd](*args)
