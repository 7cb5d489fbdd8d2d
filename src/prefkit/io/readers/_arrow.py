"""Vectorised building blocks shared by the readers' Arrow paths: arrays from buffers, zero-copy
string pieces, and `schema.prompt_id` for a whole column of prompts at once."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.schema import prompt_id

WS = r"[\t\n\x0b\x0c\r ]+"
UNSAFE = r"[\x00-\x08\x0e-\x1f\x85]"  # control chars Arrow and Python treat differently

# Arrays are built from buffers, never with `pa.array` / `np.asarray(arrow)`: those import
# pandas (a quarter of a second of CPU per process, for nothing).


def texts(values: list[str]) -> pa.Array:
    """Python strings as an Arrow string array."""
    raw = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(raw) + 1, np.int32)
    offsets[1:] = np.cumsum([len(r) for r in raw])
    return pa.StringArray.from_buffers(len(raw), pa.py_buffer(offsets), pa.py_buffer(b"".join(raw)))


def ints(values: npt.ArrayLike, dtype: Any = np.int32) -> pa.Array:
    """Integers (numpy or a list) as an Arrow array of that width."""
    a = np.ascontiguousarray(values, dtype=dtype)
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])


def flags(values: npt.NDArray[np.bool_]) -> pa.Array:
    """Numpy booleans as an Arrow boolean array."""
    bits = np.packbits(np.asarray(values, bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def bools(arr: pa.Array) -> npt.NDArray[np.bool_]:
    """An Arrow boolean array without nulls as numpy."""
    assert arr.null_count == 0
    bits = np.unpackbits(np.frombuffer(arr.buffers()[1], np.uint8), bitorder="little")
    return bits[arr.offset : arr.offset + len(arr)].astype(bool)


def numpy_ints(arr: pa.Array) -> npt.NDArray[np.int64]:
    """An Arrow int32/int64 array without nulls as numpy int64."""
    assert arr.null_count == 0
    a = np.frombuffer(arr.buffers()[1], np.int64 if arr.type == pa.int64() else np.int32)
    return a[arr.offset : arr.offset + len(arr)].astype(np.int64)


def scalar(value: str | bool | int, dtype: Any = np.int32) -> pa.Scalar:
    """A scalar for a kernel's argument (an int of `dtype`): a Python value passed to a
    kernel, like `pa.scalar`, imports pandas (0.27 s of CPU in a fresh process, measured)."""
    if isinstance(value, str):
        return texts([value])[0]
    if isinstance(value, bool):
        bits = pa.py_buffer(np.array([int(value)], np.uint8))
        return pa.Array.from_buffers(pa.bool_(), 1, [None, bits])[0]
    return ints([value], dtype)[0]


def const(value: str, n: int) -> pa.Array:
    """`value` n times (offsets and bytes built directly: half the CPU of a `take`)."""
    raw = value.encode("utf-8")
    if not raw or n * len(raw) >= 2**31:  # (a `take` raises on offsets past int32)
        return pc.take(texts([value]), ints(np.zeros(n)))
    offsets = np.arange(0, (n + 1) * len(raw), len(raw), dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(raw * n))


def may_hold_unsafe(col: pa.Array) -> bool:
    """False when no string of `col` can hold a code point of `UNSAFE` (every byte in
    0x20..0x7f): one pass over the bytes instead of a regular expression per string."""
    b = Strings(col).bytes
    return bool(len(b)) and (int(b.min()) < 0x20 or int(b.max()) >= 0x80)


def offsets_of(lengths: npt.NDArray[np.int64]) -> pa.Array:
    return ints(np.concatenate([[0], np.cumsum(lengths)]))


EMPTY = texts([""])[0]


class Strings:
    """The offsets and bytes of a string array, to cut zero-copy pieces out of it."""

    def __init__(self, col: pa.Array) -> None:
        _, obuf, dbuf = col.buffers()
        n = len(col)
        offs = np.frombuffer(obuf, np.int32)[col.offset : col.offset + n + 1]
        self.offsets = offs.astype(np.int64)
        self.starts = self.offsets[:-1]
        self.ends = self.offsets[1:]
        self.buffer = dbuf if dbuf is not None else pa.py_buffer(b"")
        self.lo = int(self.offsets[0]) if n else 0
        self.hi = int(self.offsets[-1]) if n else 0
        self.bytes = np.frombuffer(self.buffer, np.uint8)[self.lo : self.hi]

    def _array(self, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> pa.Array:
        """Pieces [s0, e0), [e0, s1), [s1, e1), ...: the spans at even positions, no copy."""
        bounds = np.empty(2 * len(starts), np.int32)
        bounds[0::2] = starts
        bounds[1::2] = ends
        return pa.StringArray.from_buffers(
            max(len(bounds) - 1, 0), pa.py_buffer(bounds), self.buffer
        )

    def spans(self, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> pa.Array:
        if not len(starts):
            return texts([])
        return self._array(starts, ends)

    def pieces(self, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> pa.Array:
        """The spans (ordered, disjoint) as one contiguous string array (one copy)."""
        if not len(starts):
            return texts([])
        arr = self._array(starts, ends)
        return pc.take(arr, ints(np.arange(0, len(arr), 2)))

    def controls(self) -> tuple[npt.NDArray[np.int64], bool]:
        """Positions of every `\n`, and whether the bytes hold a code point of `UNSAFE` (C0
        controls other than tab..CR, U+0085): one pass over the bytes for both."""
        b = self.bytes
        low = np.flatnonzero(b < 0x20)
        v = b[low]
        unsafe = bool(np.any((v < 0x09) | (v > 0x0D)))
        if not unsafe and len(b) and b.max() >= 0x80:
            nel = np.flatnonzero(b == 0x85)
            unsafe = bool(np.any(b[nel[nel > 0] - 1] == 0xC2))
        return low[v == 0x0A], unsafe


_KEY_OPEN = texts(['[["', ',["'])
_KEY_CLOSE = texts(['"]', '"]]'])
_KEY_SEP = texts(['","'])[0]


def prompt_ids(
    roles: pa.Array,
    contents: pa.Array,
    offsets: pa.Array,
    prompts: pa.Array,
    *,
    trimmed: bool = False,
) -> pa.Array:
    """`schema.prompt_id` of every prompt: ASCII prompts normalised with Arrow kernels (NFKC
    is the identity and casefold is lower on ASCII), then one blake2b each; others (and odd
    roles) in Python. `trimmed`: every content is already stripped of whitespace.

    The JSON key of a prompt, `[["user","..."],["assistant","..."]]`, is built message by
    message (each with its `[[`/`,[` head and `]`/`]]` tail), so the keys of all prompts lie
    back to back in one buffer and each is hashed in place."""
    n = len(offsets) - 1
    if n <= 0:
        return texts([])
    body = Strings(contents).bytes
    text = body.tobytes()
    lowered = pc.ascii_lower(contents)  # rows that are not ASCII are redone below
    padded = np.zeros(len(body) + 2, np.uint8)
    padded[: len(body)] = body
    pairs = np.ndarray((len(body) + 1,), "<u2", padded, 0, (1,))
    if (len(body) and body.min() < 0x20) or np.any(pairs == 0x2020):  # "  "
        needs = pc.match_substring_regex(lowered, r"[\t\n\x0b\x0c\r]|  ")
        idx = pc.indices_nonzero(needs)
        if len(idx):
            fixed = pc.replace_substring_regex(pc.take(lowered, idx), WS, " ")
            lowered = pc.replace_with_mask(lowered, needs, fixed)
    if not trimmed:
        lowered = pc.utf8_trim(lowered, " ")
    # trimmed ASCII contents (Arrow trims \t..\r, \x1c..\x1f and space, like Python) keep no
    # space at either end when inner runs collapse: no `.strip()` needed
    esc = lowered
    if b"\\" in text:
        esc = pc.replace_substring(esc, "\\", "\\\\")
    if b'"' in text:
        esc = pc.replace_substring(esc, '"', '\\"')
    starts = numpy_ints(offsets)
    first = np.ones(len(contents), np.int8)
    first[starts[:-1]] = 0
    last = np.zeros(len(contents), np.int8)
    last[starts[1:] - 1] = 1
    head = pc.take(_KEY_OPEN, ints(first, np.int8))
    tail = pc.take(_KEY_CLOSE, ints(last, np.int8))
    elems = Strings(pc.binary_join_element_wise(head, roles, _KEY_SEP, esc, tail, EMPTY))
    bounds = (elems.offsets[starts] - elems.lo).tolist()
    data = elems.bytes.tobytes()
    blake = hashlib.blake2b
    digests = bytearray(
        b"".join(
            [
                blake(data[a:b], digest_size=8).digest()
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ]
        )
    )
    odd = np.zeros(len(contents), bool)
    if contents.null_count or roles.null_count:
        odd |= ~bools(pc.and_(pc.is_valid(contents), pc.is_valid(roles)))
    if len(body) and body.max() >= 0x80:
        odd |= ~bools(pc.fill_null(pc.string_is_ascii(contents), scalar(True)))
    rb = Strings(roles).bytes
    rtext = rb.tobytes()
    if len(rb) and (rb.max() >= 0x80 or rb.min() < 0x20 or b'"' in rtext or b"\\" in rtext):
        odd |= bools(
            pc.fill_null(pc.match_substring_regex(roles, r'[^\x20-\x7e]|["\\]'), scalar(False))
        )
    if odd.any():
        bad = np.add.reduceat(odd.astype(np.int64), starts[:-1])
        for i in np.nonzero(bad)[0].tolist():
            digests[8 * i : 8 * i + 8] = bytes.fromhex(prompt_id(prompts[i].as_py()))
    hexed = digests.hex().encode("ascii")
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(np.arange(0, 16 * (n + 1), 16, dtype=np.int32)), pa.py_buffer(hexed)
    )
