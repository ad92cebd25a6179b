"""Binary payload codecs: frames (JPEG), id masks (zlib'd uint8) and matching maps (quantised).

Every payload travels as one buffer described by an :class:`~manet_widget.protocol.wire.ArrayHeader`;
an all-background mask travels as ``encoding: "empty"`` with no buffer.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from manet_widget.protocol.errors import ProtocolError
from manet_widget.protocol.wire import ArrayHeader

MAX_MASK_PIXELS = 8192 * 8192
Buffers = Sequence[bytes | bytearray | memoryview]


def encode_frame(rgb: np.ndarray, quality: int = 85) -> tuple[ArrayHeader, bytes]:
    """JPEG-encode an (H, W, 3) uint8 RGB frame."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"a frame must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return {"dtype": "uint8", "shape": [int(v) for v in rgb.shape], "encoding": "jpeg"}, data.tobytes()


def empty_mask_header(height: int, width: int) -> ArrayHeader:
    """The header of an all-background (H, W) mask, which travels without a buffer."""
    return {"dtype": "uint8", "shape": [int(height), int(width)], "encoding": "empty"}


def encode_mask(mask: np.ndarray) -> tuple[ArrayHeader, list[bytes]]:
    """zlib-compress an (H, W) uint8 id map; an all-background mask travels with no buffer."""
    if mask.ndim != 2:
        raise ValueError(f"a mask must be (H, W), got shape {mask.shape}")
    ids = np.ascontiguousarray(mask, dtype=np.uint8)
    if not ids.any():
        return empty_mask_header(*ids.shape), []
    header: ArrayHeader = {"dtype": "uint8", "shape": [int(ids.shape[0]), int(ids.shape[1])], "encoding": "zlib"}
    return header, [zlib.compress(ids.tobytes(), 1)]


def encode_map(distance: np.ndarray) -> tuple[ArrayHeader, list[bytes]]:
    """Quantise a float map in [0, 1] (0 = close to the object) to uint8 and zlib it."""
    if distance.ndim != 2:
        raise ValueError(f"a matching map must be 2-D, got shape {distance.shape}")
    quantised = np.clip(np.nan_to_num(distance, nan=1.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    header: ArrayHeader = {"dtype": "uint8", "shape": [int(quantised.shape[0]), int(quantised.shape[1])],
                           "encoding": "zlib"}
    return header, [zlib.compress(quantised.tobytes(), 6)]


def decode_mask_payload(header: Any, buffers: Buffers) -> np.ndarray:
    """The read-only (H, W) uint8 id mask of an ``apply_mask`` message.

    Decompression is bounded by the header's size, so a zip bomb stops at H*W + 1 bytes.

    Raises:
        ProtocolError: a header that is not ``{dtype: "uint8", shape: [H, W], encoding}``, a mask
            larger than any frame, or a buffer that does not hold exactly H*W values.
    """
    if not isinstance(header, Mapping) or header.get("dtype") != "uint8":
        raise ProtocolError("an apply_mask message needs header {dtype: 'uint8', shape: [H, W], encoding}")
    shape = header.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise ProtocolError(f"a mask header needs shape [H, W] of positive integers, got {shape!r:.40}")
    height, width = shape
    if height * width > MAX_MASK_PIXELS:
        raise ProtocolError(f"a {height}x{width} mask is larger than any frame this widget shows")
    encoding = header.get("encoding")
    if encoding == "empty":
        return _read_only(np.zeros((height, width), np.uint8))
    if encoding != "zlib" or len(buffers) != 1:
        raise ProtocolError(f"a mask travels zlib'd in one buffer (or 'empty' without), got {encoding!r:.20} "
                            f"with {len(buffers)} buffers")
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(bytes(buffers[0]), height * width + 1)
    except zlib.error as error:
        raise ProtocolError(f"the mask buffer is not valid zlib data ({error})") from error
    if len(data) != height * width or inflater.unconsumed_tail:
        raise ProtocolError(f"the mask buffer holds {len(data)}{'+' if inflater.unconsumed_tail else ''} values, "
                            f"the header says {height}x{width}")
    return _read_only(np.frombuffer(data, np.uint8).reshape(height, width).copy())


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def decode_array(header: Mapping[str, Any], buffers: Buffers) -> np.ndarray:
    """Decode a ``mask``/``map``/``frame`` payload back to an array (tests and tools)."""
    shape = tuple(int(v) for v in header["shape"])
    encoding = header["encoding"]
    if encoding == "empty":
        return np.zeros(shape, dtype=np.uint8)
    data = bytes(buffers[0])
    if encoding == "zlib":
        return np.frombuffer(zlib.decompress(data), dtype=np.dtype(header["dtype"])).reshape(shape)
    if encoding == "jpeg":
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ProtocolError("the JPEG payload cannot be decoded")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if encoding == "raw":
        return np.frombuffer(data, dtype=np.dtype(header["dtype"])).reshape(shape)
    raise ProtocolError(f"unknown encoding {encoding!r}")
