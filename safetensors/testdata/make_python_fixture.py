#!/usr/bin/env python3
"""Writes python.safetensors the way the reference Python/Rust library lays a
file out (metadata first, tensors ordered by alignment then name, header
padded with spaces to a multiple of 8), using only the standard library, so
that the Go reader is tested against bytes it did not write itself.

Run from this folder: python3 make_python_fixture.py
"""
import json
import struct

tensors = [
    # name, dtype, shape, little-endian bytes
    ("scale", "F64", [], struct.pack("<d", 2.5)),
    ("steps", "I64", [2], struct.pack("<2q", 7, -3)),
    ("conv.weight", "F32", [2, 3], struct.pack("<6f", 1.0, -2.0, 0.5, 3.25, 0.0, -0.125)),
    ("counts", "I32", [2], struct.pack("<2i", 40000, -1)),
    ("bf", "BF16", [2], struct.pack("<2H", 0x3FC0, 0xC000)),   # 1.5, -2.0
    ("half", "F16", [3], struct.pack("<3H", 0x3C00, 0xC100, 0x0001)),  # 1, -2.5, 2^-24
    ("flags", "BOOL", [3], bytes([1, 0, 1])),
    ("mask", "U8", [2, 2], bytes([0, 255, 3, 4])),
    ("empty", "F32", [0, 4], b""),
]
align = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "BF16": 2, "F16": 2, "BOOL": 1, "U8": 1}
tensors.sort(key=lambda t: (-align[t[1]], t[0]))

header = {"__metadata__": {"format": "pt", "made_by": "make_python_fixture.py"}}
data = b""
for name, dtype, shape, raw in tensors:
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open("python.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
