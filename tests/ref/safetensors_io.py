"""Minimal safetensors reader/writer (numpy only, no dependencies).

Format:
    8 bytes   little-endian u64 N, the length of the JSON header
    N bytes   UTF-8 JSON: {name: {"dtype", "shape", "data_offsets": [begin, end]},
                           "__metadata__": {str: str}}
              padded with spaces so that 8 + N is a multiple of 8
    data      tensors back to back, little-endian, row-major (C order);
              offsets are relative to the start of this data section

Only the dtypes F32, F64, I32 and I64 are supported.

    save(path, {"w": np.zeros((2, 3), np.float32)}, {"note": "hello"})
    tensors, metadata = load(path)
"""

import json
import struct

import numpy as np

_DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}


def _code_of(dtype):
    dtype = np.dtype(dtype)
    for code, dt in _DTYPES.items():
        if dt.kind == dtype.kind and dt.itemsize == dtype.itemsize:
            return code
    raise ValueError(f"unsupported dtype {dtype} (F32, F64, I32, I64 only)")


def save(path, tensors, metadata=None):
    """Writes `tensors` (name -> np.ndarray) and `metadata` (str -> str)."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved")
        arr = np.asarray(tensors[name])
        code = _code_of(arr.dtype)
        data = np.ascontiguousarray(arr, dtype=_DTYPES[code]).tobytes(order="C")
        header[name] = {
            "dtype": code,
            "shape": [int(s) for s in arr.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata keys and values must be str")
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-(8 + len(text))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def load(path):
    """Returns (tensors: dict name -> np.ndarray, metadata: dict str -> str)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} exceeds file size")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        shape = tuple(int(s) for s in info["shape"])
        begin, end = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * dt.itemsize or end > len(data) or begin < 0:
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {begin},{end}")
        arr = np.frombuffer(data[begin:end], dtype=dt, count=count).reshape(shape)
        tensors[name] = arr.astype(dt.newbyteorder("="), copy=True)
    return tensors, metadata
