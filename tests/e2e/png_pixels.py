"""A PNG decoder for screenshots: 8-bit RGB or RGBA, not interlaced, into a numpy array.

Enough to check what a browser drew without an imaging library: chunks, zlib, and the
five row filters of the PNG specification (section 9).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type: RGB, RGBA


def decode_png(data: bytes) -> npt.NDArray[np.uint8]:
    """The image as an array of shape (height, width, 3 or 4)."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    offset, header, compressed = len(_SIGNATURE), b"", bytearray()
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}")
    channels = _CHANNELS[colour]
    stride = width * channels
    raw = np.frombuffer(zlib.decompress(bytes(compressed)), dtype=np.uint8)
    rows = raw.reshape(height, stride + 1)
    image = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        image[y] = _unfilter(int(rows[y, 0]), rows[y, 1:], previous, channels)
        previous = image[y]
    return image.reshape(height, width, channels)


def _unfilter(
    kind: int, line: npt.NDArray[np.uint8], up: npt.NDArray[np.uint8], bpp: int
) -> npt.NDArray[np.uint8]:
    if kind == 0:  # None
        return line
    if kind == 1:  # Sub: a running sum of each channel along the row, modulo 256
        return np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
    if kind == 2:  # Up
        return line + up
    # Average and Paeth depend on the byte just decoded to the left: one byte at a time.
    out = bytearray(len(line))
    above = up.tolist()
    for i, value in enumerate(line.tolist()):
        left = out[i - bpp] if i >= bpp else 0
        if kind == 3:
            out[i] = (value + (left + above[i]) // 2) & 0xFF
        elif kind == 4:
            corner = above[i - bpp] if i >= bpp else 0
            estimate = left + above[i] - corner
            a, b, c = abs(estimate - left), abs(estimate - above[i]), abs(estimate - corner)
            nearest = left if a <= b and a <= c else above[i] if b <= c else corner
            out[i] = (value + nearest) & 0xFF
        else:
            raise ValueError(f"unknown PNG row filter {kind}")
    return np.frombuffer(bytes(out), dtype=np.uint8)
