#!/usr/bin/env python3
"""Checks a segment's CARv1 from the trustless gateway against the segment.

    car.py SEGMENT.car SEGMENT LEAF_OUT

Every block must hash (sha2-256) to its CID, and the raw leaves, in order,
must be the segment's bytes. Writes the first leaf to LEAF_OUT and prints
its CID (CIDv1, base32), for the raw-block benchmark.
"""
import base64
import hashlib
import sys


def varint(buf, at):
    v = shift = 0
    while True:
        b = buf[at]
        at += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, at


def main():
    car, segment, leaf_out = sys.argv[1:4]
    data = open(car, "rb").read()
    n, at = varint(data, 0)
    at += n
    leaves = []
    while at < len(data):
        n, at = varint(data, at)
        end = at + n
        start = at
        version, at = varint(data, at)
        codec, at = varint(data, at)
        code, at = varint(data, at)
        size, at = varint(data, at)
        digest, block = data[at:at + size], data[at + size:end]
        if version != 1 or code != 0x12 or hashlib.sha256(block).digest() != digest:
            sys.exit("a block does not match its CID")
        if codec == 0x55:
            leaves.append((data[start:at + size], block))
        at = end
    if b"".join(b for _, b in leaves) != open(segment, "rb").read():
        sys.exit("the leaves are not the segment")
    cid, block = leaves[0]
    open(leaf_out, "wb").write(block)
    print("b" + base64.b32encode(cid).decode().lower().rstrip("="))


if __name__ == "__main__":
    main()
