"""Byte-stream helpers for object downloads: incremental gunzip, line splitting, safe file names.

Everything works chunk by chunk so memory stays bounded by the chunk size (plus the longest line),
whatever the size of the object.
"""

from __future__ import annotations

import os
import posixpath
import zlib
from collections.abc import Iterable, Iterator
from types import ModuleType
from urllib.parse import unquote, urlsplit

from tap_dap.client.errors import DownloadError, TruncatedObjectError

try:
    from isal import isal_zlib
except ImportError:  # python-isal is only a speed-up; zlib gives the same bytes
    isal_zlib = None

GZIP_MAGIC = b"\x1f\x8b"
#: gzip implementations by name, preferred first. Both have zlib's ``decompressobj`` interface;
#: python-isal inflates DAP objects about three times faster than zlib.
INFLATERS: dict[str, ModuleType] = {"zlib": zlib}
if isal_zlib is not None:
    INFLATERS = {"isal": isal_zlib, **INFLATERS}
DEFAULT_INFLATER: ModuleType = next(iter(INFLATERS.values()))
_INFLATE_ERRORS: tuple[type[Exception], ...] = tuple({m.error for m in INFLATERS.values()})
# Compressed bytes per inflate call. Small slices keep the pieces small enough to stay in the CPU
# cache while they are split and encoded, and rarely hit _MAX_PIECE, whose unconsumed_tail would
# copy the rest of the input on every call.
_INPUT_SLICE = 32 * 1024
# Upper bound of one decompressed piece: 32 KiB of gzip can still expand a thousand-fold.
_MAX_PIECE = 1024 * 1024


def gunzip_chunks(
    chunks: Iterable[bytes],
    *,
    label: str,
    object_id: str | None = None,
    inflater: ModuleType | None = None,
) -> Iterator[bytes]:
    """Decompress a gzip byte stream incrementally; pass non-gzip streams through unchanged.

    The stream is recognised by its magic bytes rather than its name, so an object already decoded
    by an HTTP layer (Content-Encoding: gzip) is not decompressed twice. Concatenated gzip members
    are supported. A corrupt stream raises DownloadError naming `label`; one that ends inside a
    member, or is empty, raises TruncatedObjectError (retryable: the next copy may be whole).
    ``inflater`` is one of INFLATERS, DEFAULT_INFLATER if None (same bytes, different speed).
    """
    iterator = iter(chunks)
    head = b""
    for chunk in iterator:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head:
        # DAP serves every object as gzip, and a gzip stream is never empty (a member has at
        # least a header): 0 bytes is a broken copy, not "no rows". Retryable like a cut stream.
        raise empty_object(label, object_id)
    if not head.startswith(GZIP_MAGIC):
        yield head
        yield from iterator
        return

    inflater = inflater or DEFAULT_INFLATER
    wbits = 16 + inflater.MAX_WBITS
    member = None  # the open member's decompressor; None between members
    try:
        for chunk in _prepend(head, iterator):
            view = memoryview(chunk)
            for start in range(0, len(view), _INPUT_SLICE):
                data: bytes | memoryview = view[start : start + _INPUT_SLICE]
                while data:
                    if member is None:
                        if not _starts_member(bytes(data), label, object_id):
                            break
                        member = inflater.decompressobj(wbits)
                    piece = member.decompress(data, _MAX_PIECE)
                    if piece:
                        yield piece
                    while member.unconsumed_tail:
                        piece = member.decompress(member.unconsumed_tail, _MAX_PIECE)
                        if piece:
                            yield piece
                    if member.eof:
                        data = member.unused_data
                        member = None
                    else:
                        data = b""
    except _INFLATE_ERRORS as exc:
        raise DownloadError(f"{label}: corrupt gzip data ({exc})", object_id=object_id) from None
    if member is not None:
        raise TruncatedObjectError(
            f"{label}: gzip data is truncated (the stream ended inside a compressed member)",
            object_id=object_id,
        )


def empty_object(label: str, object_id: str | None) -> TruncatedObjectError:
    """The error for a 0-byte object (retryable: the next copy may be whole)."""
    return TruncatedObjectError(
        f"{label}: the object is empty (0 bytes; a DAP object is a gzip stream, never empty)",
        object_id=object_id,
    )


def _starts_member(data: bytes, label: str, object_id: str | None) -> bool:
    """Whether ``data`` after a member opens another; False for zero padding (tar/gzip allow it).

    Checked here because isal waits for a whole header before it looks at the magic bytes, and
    would call a short non-gzip tail truncated (retryable) instead of corrupt.
    """
    if not data.strip(b"\x00"):
        return False
    if not GZIP_MAGIC.startswith(data[:2]):
        raise DownloadError(
            f"{label}: corrupt gzip data (what follows a gzip member is not gzip)",
            object_id=object_id,
        )
    return True


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def line_blocks(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Re-cut a byte stream into blocks of whole lines, each ending with b"\\n".

    A last line without a line ending gets one. Nothing else changes (carriage returns and empty
    lines stay), so line N of the stream is line N of the blocks. Consumers then split or parse a
    whole block in C instead of handling one line per Python step.
    """
    partial: list[bytes | memoryview] = []  # the start of a line that spans pieces
    for piece in pieces:
        end = piece.rfind(b"\n") + 1
        if not end:
            if piece:
                partial.append(piece)
            continue
        if partial:
            partial.append(memoryview(piece)[:end])
            yield b"".join(partial)
            partial = []
        else:
            yield piece if end == len(piece) else piece[:end]
        if end < len(piece):
            partial.append(memoryview(piece)[end:])
    if partial:
        partial.append(b"\n")
        yield b"".join(partial)


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the lines of a byte stream without their line ending; empty lines are skipped."""
    for block in line_blocks(chunks):
        lines = block.split(b"\n")
        lines.pop()  # the empty remainder after the block's final line ending
        if b"\r" in block:
            lines = [line.removesuffix(b"\r") for line in lines]
        if b"" in lines:
            lines = [line for line in lines if line]
        yield from lines


def safe_target_path(url: str, output_directory: str, *, decompress: bool, label: str) -> str:
    """Where to save an object: the basename of the URL path, which must stay inside the directory.

    A hostile or buggy server could otherwise make us write outside `output_directory` with names
    such as `..%2F..%2Fetc%2Fcron.d%2Fx`.
    """
    name = unquote(posixpath.basename(urlsplit(url).path))
    if decompress:
        name = name.removesuffix(".gz")
    if not name or name in (".", "..") or any(sep in name for sep in ("/", "\\", "\x00")):
        raise DownloadError(f"{label}: refusing unsafe file name {name!r} from the object URL")
    base = os.path.realpath(output_directory)
    path = os.path.realpath(os.path.join(base, name))
    if os.path.commonpath([base, path]) != base or path == base:
        raise DownloadError(f"{label}: refusing to write {name!r} outside {output_directory}")
    return path
