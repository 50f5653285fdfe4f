#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-NNN).

The seeds are the byte-exact request/response examples of the protocol notes
(shared/spec/protocol-notes.md) and of the recordings from memcached 1.6.18
(shared/spec/empirical-1.6.18.json), put in each target's input format (see the doc comment at
the top of each file in fuzz/fuzz_targets/). Existing seed-* files are replaced; other corpus
files (what the fuzzer found) are left alone.

Usage: python3 scripts/make-fuzz-seeds.py [--spec DIR] [--out DIR]
(defaults: ../shared/spec beside the repository, and fuzz/corpus). Python 3 stdlib only.
"""

import argparse
import ast
import codecs
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Keep in step with mcache_fuzz::expect_for (fuzz/src/lib.rs).
EXPECT = {
    "values_foo": 0,
    "values_foo_cas": 1,
    "values_multi": 2,
    "values_multi_cas": 3,
    "storage": 4,
    "delete": 5,
    "arith": 6,
    "touch": 7,
    "ok": 8,
    "version": 9,
    "stats": 10,
    "mg": 11,
    "mg_opaque": 12,
    "ms": 13,
    "ms_opaque": 14,
    "md": 15,
    "md_opaque": 16,
    "ma": 17,
    "ma_opaque": 18,
    "mg_binary": 19,
    "mn": 20,
    "me": 21,
    "values_ab": 22,
    "mg_nokey": 23,
}

# Keep in step with KEYS in fuzz/fuzz_targets/meta_flags.rs.
META_KEYS = [
    (b"foo", False),
    (b"k:1", False),
    (b"a", False),
    (b"AP9iaW4NCiBrZXk=", True),
    (b"Zm9v", True),
    (b"nokey_mg", False),
    (b"Zm9v", False),
    (b"AQI=", True),
]

REQUEST_COMMANDS = {
    b"get", b"gets", b"gat", b"gats", b"set", b"add", b"replace", b"append", b"prepend",
    b"cas", b"delete", b"incr", b"decr", b"touch", b"flush_all", b"version", b"verbosity",
    b"stats", b"quit", b"mg", b"ms", b"md", b"ma", b"mn", b"me", b"shutdown",
}

PLACEHOLDER = re.compile(r"<(\d+)(?:\*| )?([A-Za-z])?>")


def expand(text):
    """Expands `<250*k>`, `<2097152 x>`, `<251>` (as k's); None if too large."""
    def sub(m):
        n = int(m.group(1))
        if n > 8192:
            raise ValueError("too large")
        return (m.group(2) or "k") * n
    try:
        return PLACEHOLDER.sub(sub, text)
    except ValueError:
        return None


def unescape(text):
    """Bytes of a Python/Rust-style escaped string (`\\r\\n`, `\\xNN`, `\\t`, `\\0`)."""
    text = expand(text)
    if text is None:
        return None
    return codecs.escape_decode(text.encode("latin-1"))[0]


def from_json_field(value):
    """Bytes of a recorded field: a `b'...'` literal, or a plain string with placeholders."""
    v = value.strip()
    if v.startswith(("b'", 'b"')):
        try:
            return ast.literal_eval(v)
        except (ValueError, SyntaxError):
            return None
    expanded = expand(v)
    # Descriptions ("pause", "...", "then") are not bytes.
    if expanded is None or any(s in expanded for s in ("<", "...", "'", " then ", "pause")):
        return None
    if "\\r\\n" not in expanded and "\\n" not in expanded:
        return None
    return unescape(v)


def first_token(data):
    toks = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0].split()
    return toks[0] if toks else b""


def is_request(data):
    return first_token(data) in REQUEST_COMMANDS


def expect_of_request(req):
    """The decode_response selector for the reply to `req` (its first command)."""
    line = req.split(b"\n", 1)[0].rstrip(b"\r")
    toks = line.split()
    if not toks:
        return EXPECT["values_foo"]
    cmd, args = toks[0], toks[1:]
    opaque = any(t.startswith(b"O") for t in args[1:])
    binary = b"b" in args[1:]
    if cmd in (b"get", b"gat"):
        keys = args if cmd == b"get" else args[1:]
        return EXPECT["values_multi" if len(keys) > 1 else "values_foo"]
    if cmd in (b"gets", b"gats"):
        keys = args if cmd == b"gets" else args[1:]
        return EXPECT["values_multi_cas" if len(keys) > 1 else "values_foo_cas"]
    if cmd in (b"set", b"add", b"replace", b"append", b"prepend", b"cas"):
        return EXPECT["storage"]
    if cmd == b"delete":
        return EXPECT["delete"]
    if cmd in (b"incr", b"decr"):
        return EXPECT["arith"]
    if cmd == b"touch":
        return EXPECT["touch"]
    if cmd in (b"flush_all", b"verbosity"):
        return EXPECT["ok"]
    if cmd == b"version":
        return EXPECT["version"]
    if cmd == b"stats":
        return EXPECT["stats"]
    if cmd == b"mg":
        if binary:
            return EXPECT["mg_binary"]
        if args and args[0] == b"nokey_mg":
            return EXPECT["mg_nokey"]
        return EXPECT["mg_opaque" if opaque else "mg"]
    if cmd in (b"ms", b"md", b"ma"):
        name = cmd.decode()
        return EXPECT[name + "_opaque" if opaque else name]
    if cmd == b"mn":
        return EXPECT["mn"]
    if cmd == b"me":
        return EXPECT["me"]
    return EXPECT["values_foo"]


def expect_of_response(resp):
    """A selector for a reply seen without its request."""
    tok = first_token(resp)
    line = resp.split(b"\r\n", 1)[0]
    if tok == b"VALUE":
        return EXPECT["values_foo_cas" if len(line.split()) == 5 else "values_foo"]
    table = {
        b"END": "values_foo", b"STORED": "storage", b"NOT_STORED": "storage",
        b"EXISTS": "storage", b"NOT_FOUND": "storage", b"DELETED": "delete",
        b"TOUCHED": "touch", b"OK": "ok", b"VERSION": "version", b"STAT": "stats",
        b"RESET": "stats", b"VA": "mg", b"HD": "mg", b"EN": "mg", b"NS": "ms", b"EX": "ms",
        b"NF": "md", b"MN": "mn", b"ME": "me",
    }
    if tok in table:
        return EXPECT[table[tok]]
    if tok.isdigit():
        return EXPECT["arith"]
    return EXPECT["values_foo"]


def meta_flags_seed(req):
    """The meta_flags input for the first line of an mg/ms/md/ma request, or None."""
    line = req.split(b"\n", 1)[0].rstrip(b"\r")
    toks = line.split(b" ")
    toks = [t for t in toks if t]
    if len(toks) < 2 or toks[0] not in (b"mg", b"ms", b"md", b"ma"):
        return None
    cmd = [b"mg", b"ms", b"md", b"ma"].index(toks[0])
    key, rest = toks[1], toks[2:]
    datalen = 0
    if toks[0] == b"ms":
        if not rest or not rest[0].isdigit() or int(rest[0]) > 255:
            return None
        datalen, rest = int(rest[0]), rest[1:]
    binary = b"b" in rest
    try:
        k = META_KEYS.index((key, binary))
        if binary:
            rest.remove(b"b")
    except ValueError:
        k = 0
    return bytes([cmd | (k << 2), datalen]) + b" ".join(rest)


def connection_seed(req, resp):
    """connection input: send the request bytes, write them, receive the reply, poll."""
    if len(req) > 255:
        return None
    out = bytearray([0, 1, len(req)]) + req + bytes([5, 0])
    for i in range(0, len(resp), 255):
        part = resp[i:i + 255]
        out += bytes([3, len(part)]) + part
    out += bytes([9])
    return bytes(out)


# Hand-written connection scenarios (template sends, canned replies; see connection.rs).
CONNECTION_EXTRA = [
    # mg foo v q, mg bar v q, write (adds mn), "VA 3 O0 kfoo", "MN", poll all.
    bytes([0, 0, 7, 0, 1, 0, 7, 1, 1, 5, 0, 4, 20, 0, 4, 13, 0, 9]),
    # get foo, abandon it, get foo, write, two replies, poll.
    bytes([0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 5, 0, 4, 0, 0, 4, 0, 0, 9]),
    # set noreply, delete noreply, write (adds mn), ERROR (ambiguous), poll.
    bytes([0, 0, 2, 0, 1, 0, 4, 0, 1, 5, 0, 4, 15, 0, 9]),
    # read timeout: get foo, write, tick 2 s, poll.
    bytes([1, 0, 0, 0, 0, 5, 0, 7, 100, 9]),
    # version sync: ms q, write (adds version), VERSION, poll.
    bytes([2, 0, 9, 0, 1, 5, 0, 4, 11, 0, 9]),
    # quit after a quiet md, eof.
    bytes([0, 0, 10, 0, 1, 0, 18, 0, 0, 5, 0, 6, 9]),
    # reply queued, then abandoned before it is polled.
    bytes([0, 0, 13, 0, 0, 5, 0, 4, 11, 0, 2, 0, 9]),
]


def collect(spec):
    """(request, response) pairs; either may be None."""
    pairs = []
    notes = (spec / "protocol-notes.md").read_text(encoding="utf-8")
    snippet = r"`([^`\n]*\\n[^`\n]*)`"
    paired_spans = set()
    for m in re.finditer(snippet + r"\s*(?:->|→)\s*" + snippet, notes):
        a, b = unescape(m.group(1)), unescape(m.group(2))
        paired_spans.update([m.start(1), m.start(2)])
        if a is not None and b is not None and is_request(a):
            pairs.append((a, b))
        else:
            # "old reply -> new reply" and the like: each on its own.
            for data in (a, b):
                if data:
                    pairs.append((data, None) if is_request(data) else (None, data))
    for m in re.finditer(snippet, notes):
        if m.start(1) in paired_spans:
            continue
        data = unescape(m.group(1))
        if not data or data in (b"\r\n", b"\n"):
            continue
        pairs.append((data, None) if is_request(data) else (None, data))
    for rec in json.loads((spec / "empirical-1.6.18.json").read_text(encoding="utf-8")):
        req = from_json_field(rec.get("request") or "")
        resp = from_json_field(rec.get("response") or "")
        if req is None and resp is None:
            continue
        pairs.append((req, resp if resp else None))
    return pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", type=Path, default=REPO.parent / "shared" / "spec")
    ap.add_argument("--out", type=Path, default=REPO / "fuzz" / "corpus")
    args = ap.parse_args()
    if not (args.spec / "protocol-notes.md").is_file():
        sys.exit(f"make-fuzz-seeds: no protocol-notes.md in {args.spec} (use --spec DIR)")

    seeds = {t: [] for t in ("decode_response", "decode_request", "meta_flags", "connection")}

    def add(target, data):
        if data is not None and data not in seeds[target]:
            seeds[target].append(data)

    for req, resp in collect(args.spec):
        if req is not None:
            add("decode_request", bytes([0, 0]) + req)
            add("meta_flags", meta_flags_seed(req))
        if resp is not None:
            sel = expect_of_request(req) if req is not None else expect_of_response(resp)
            add("decode_response", bytes([sel, 0]) + resp)
            # The same bytes split into 1-byte chunks.
            if len(resp) < 64:
                add("decode_response", bytes([sel, 1, 0]) + resp)
        if req is not None and resp is not None:
            add("connection", connection_seed(req, resp))
    for extra in CONNECTION_EXTRA:
        add("connection", extra)

    for target, items in seeds.items():
        d = args.out / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("seed-*"):
            old.unlink()
        for i, data in enumerate(items):
            (d / f"seed-{i:03}").write_bytes(data)
        print(f"{target}: {len(items)} seeds in {d}")


if __name__ == "__main__":
    main()
