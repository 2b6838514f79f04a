"""The model file of a bundle (``model.zsqm``): named binary sections with a checksum.

Layout, little-endian, every offset and size in bytes::

    header (64 bytes)
      0  char[8]  magic "ZSQMODEL"
      8  u32      version (1)
     12  u32      n_sections
     16  u64      file_bytes   (the whole file)
     24  u64      model_id     (must equal the executor's ZSQ_MODEL_ID)
     32  u32      crc32        (zlib CRC-32 of every byte after the header)
     36  zeros
    section table: n_sections entries of 64 bytes
      0  char[48] name, NUL-terminated, NUL-padded, unique
     48  u64      offset (a multiple of 64)
     56  u64      bytes
    section data, each section 64-byte aligned, in table order, zero padding between

Sections: ``meta`` (UTF-8 JSON), ``const.<k>`` (the CPU operators' constants, raw
little-endian tensors), ``<symbol>.insn`` / ``<symbol>.wgt`` (each offloaded function's
instruction words and packed weights + params, u64 words).

The C reader (``templates/zsq_model_file.c``) applies the same checks as ``unpack``;
this module writes files and reads them back for tests and tools.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import DeployError

MAGIC = b"ZSQMODEL"
VERSION = 1
HEADER_BYTES = 64
ENTRY_BYTES = 64
NAME_BYTES = 48
ALIGN = 64
# magic, version, n_sections, file_bytes, model_id, crc32
_HEADER = struct.Struct("<8sIIQQI")
_ENTRY = struct.Struct(f"<{NAME_BYTES}sQQ")
# A table beyond this is not a model file (also bounds what a reader allocates for it).
MAX_SECTIONS = 1 << 16


class ModelFileError(DeployError, ValueError):
    """A model file is malformed (the message names the field) or cannot be written."""


@dataclass(frozen=True)
class ModelFile:
    """A parsed model file: ``sections`` maps names to their bytes, in table order."""

    version: int
    model_id: int
    crc32: int
    sections: dict[str, bytes]

    def meta(self) -> dict:
        """The ``meta`` section as a dict."""
        if "meta" not in self.sections:
            raise ModelFileError("model file has no 'meta' section")
        return json.loads(self.sections["meta"].decode("utf-8"))


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _check_name(name: str) -> bytes:
    raw = name.encode("utf-8") if isinstance(name, str) else b""
    if not raw or len(raw) >= NAME_BYTES or not all(0x21 <= c < 0x7F for c in raw):
        raise ModelFileError(f"section name {name!r} must be 1..{NAME_BYTES - 1} printable "
                             "ASCII characters without spaces")
    return raw


def pack(sections: list[tuple[str, bytes]], model_id: int) -> bytes:
    """The bytes of a model file holding ``sections`` (name, data) in order."""
    if not 0 <= int(model_id) < 1 << 64:
        raise ModelFileError(f"model id {model_id!r} is not a u64")
    if len(sections) > MAX_SECTIONS:
        raise ModelFileError(f"{len(sections)} sections (at most {MAX_SECTIONS})")
    names = [_check_name(n) for n, _ in sections]
    if len(set(names)) != len(names):
        dup = sorted({n.decode() for n in names if names.count(n) > 1})
        raise ModelFileError(f"duplicate section names: {', '.join(dup)}")
    table, body = [], bytearray()
    pos = _align(HEADER_BYTES + ENTRY_BYTES * len(sections))
    for raw, (_, data) in zip(names, sections):
        data = bytes(data)
        table.append(_ENTRY.pack(raw, pos, len(data)))
        body += data + b"\0" * (_align(len(data)) - len(data))
        pos += _align(len(data))
    rest = b"".join(table)
    rest += b"\0" * (_align(HEADER_BYTES + len(rest)) - HEADER_BYTES - len(rest)) + bytes(body)
    crc = zlib.crc32(rest) & 0xFFFFFFFF
    head = _HEADER.pack(MAGIC, VERSION, len(sections), HEADER_BYTES + len(rest), int(model_id), crc)
    return head + b"\0" * (HEADER_BYTES - len(head)) + rest


def write(path, sections: list[tuple[str, bytes]], model_id: int) -> int:
    """Write a model file (see ``pack``); returns its size in bytes."""
    data = pack(sections, model_id)
    Path(path).write_bytes(data)
    return len(data)


def unpack(data: bytes, *, model_id: int | None = None) -> ModelFile:
    """Parse and check a model file: magic, version, size, reserved bytes, CRC-32, then
    the table (inside the file, names NUL-terminated, printable and unique, sections
    aligned, in order, not overlapping and inside the file). ``model_id``: also require
    this id. Raises ModelFileError naming what is wrong."""
    data = bytes(data)
    if len(data) < HEADER_BYTES:
        raise ModelFileError(f"file is {len(data)} bytes, shorter than the {HEADER_BYTES}-byte "
                             "header")
    magic, version, n, file_bytes, mid, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ModelFileError("bad magic: not a zynq-squeeze model file")
    if version != VERSION:
        raise ModelFileError(f"format version {version} (this reader knows {VERSION})")
    if any(data[_HEADER.size:HEADER_BYTES]):
        raise ModelFileError("reserved header bytes are not zero")
    if file_bytes != len(data):
        raise ModelFileError(f"file is {len(data)} bytes but its header says {file_bytes} "
                             "(truncated or extended)")
    if n > MAX_SECTIONS or HEADER_BYTES + ENTRY_BYTES * n > len(data):
        raise ModelFileError(f"section table of {n} entries does not fit in the file")
    actual = zlib.crc32(data[HEADER_BYTES:]) & 0xFFFFFFFF
    if actual != crc:
        raise ModelFileError(f"CRC-32 mismatch: header 0x{crc:08x}, contents 0x{actual:08x} "
                             "(the file is damaged)")
    sections: dict[str, bytes] = {}
    end = HEADER_BYTES + ENTRY_BYTES * n
    for i in range(n):
        raw, off, size = _ENTRY.unpack_from(data, HEADER_BYTES + ENTRY_BYTES * i)
        nul = raw.find(b"\0")
        if nul <= 0 or any(raw[nul:]) or not all(0x21 <= c < 0x7F for c in raw[:nul]):
            raise ModelFileError(f"section {i}: name is empty, not NUL-terminated, not "
                                 "NUL-padded or not printable ASCII")
        name = raw[:nul].decode("ascii")
        if name in sections:
            raise ModelFileError(f"section {i}: duplicate name {name!r}")
        if off % ALIGN:
            raise ModelFileError(f"section {name!r}: offset {off} is not {ALIGN}-byte aligned")
        if off < end or size > len(data) - off:
            raise ModelFileError(f"section {name!r}: bytes [{off}, {off}+{size}) overlap the "
                                 "table or a previous section or lie outside the file")
        sections[name] = data[off:off + size]
        end = off + size
    if model_id is not None and mid != model_id:
        raise ModelFileError(f"model id 0x{mid:016x} is not this executor's 0x{model_id:016x}: "
                             "the file belongs to another build")
    return ModelFile(version=version, model_id=mid, crc32=crc, sections=sections)


def read(path, *, model_id: int | None = None) -> ModelFile:
    """``unpack`` of the file at ``path``."""
    return unpack(Path(path).read_bytes(), model_id=model_id)
