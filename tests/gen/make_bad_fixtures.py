#!/usr/bin/env python3
"""Writes tests/fixtures/bad/: small malformed inputs for the CLI error-path tests that a shell cannot easily make.
huge_60000.png: a valid PNG signature and IHDR (correct CRC) claiming 60000 x 60000 RGB pixels, then a tiny IDAT
and IEND: a decompression bomb's header. Run from the repository root with /usr/bin/python3."""
import struct
import zlib


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


png = b"\x89PNG\r\n\x1a\n"
png += chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"\x00" * 64))
png += chunk(b"IEND", b"")
with open("tests/fixtures/bad/huge_60000.png", "wb") as f:
    f.write(png)
