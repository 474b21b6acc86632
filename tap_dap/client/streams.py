"""Byte-stream helpers for object downloads: incremental gunzip, line splitting, safe file names.

Everything works chunk by chunk so memory stays bounded by the chunk size (plus the longest line),
whatever the size of the object.
"""

from __future__ import annotations

import os
import posixpath
import zlib
from collections.abc import Iterable, Iterator
from urllib.parse import unquote, urlsplit

from tap_dap.client.errors import DownloadError, TruncatedObjectError

GZIP_MAGIC = b"\x1f\x8b"
# Upper bound of one decompressed piece: a 1 MiB gzip chunk can expand 20-fold or more.
_MAX_PIECE = 4 * 1024 * 1024


def _new_decompressor() -> zlib._Decompress:
    return zlib.decompressobj(16 + zlib.MAX_WBITS)


def gunzip_chunks(
    chunks: Iterable[bytes], *, label: str, object_id: str | None = None
) -> Iterator[bytes]:
    """Decompress a gzip byte stream incrementally; pass non-gzip streams through unchanged.

    The stream is recognised by its magic bytes rather than its name, so an object already decoded
    by an HTTP layer (Content-Encoding: gzip) is not decompressed twice. Concatenated gzip members
    are supported. A corrupt stream raises DownloadError naming `label`; one that ends inside a
    member raises TruncatedObjectError (retryable: the next copy may be whole).
    """
    iterator = iter(chunks)
    head = b""
    for chunk in iterator:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        yield from iterator
        return

    decompressor = _new_decompressor()
    member_open = False
    try:
        for data in _prepend(head, iterator):
            while data:
                if not member_open:
                    if not data.strip(b"\x00"):
                        break  # zero padding after the last member, as tar/gzip tools allow
                    decompressor = _new_decompressor()
                    member_open = True
                piece = decompressor.decompress(data, _MAX_PIECE)
                if piece:
                    yield piece
                while decompressor.unconsumed_tail:
                    piece = decompressor.decompress(decompressor.unconsumed_tail, _MAX_PIECE)
                    if piece:
                        yield piece
                if decompressor.eof:
                    member_open = False
                    data = decompressor.unused_data
                else:
                    data = b""
    except zlib.error as exc:
        raise DownloadError(f"{label}: corrupt gzip data ({exc})", object_id=object_id) from None
    if member_open:
        raise TruncatedObjectError(
            f"{label}: gzip data is truncated (the stream ended inside a compressed member)",
            object_id=object_id,
        )


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the lines of a byte stream without their line ending; empty lines are skipped."""
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                yield line
    if pending.endswith(b"\r"):
        pending = pending[:-1]
    if pending:
        yield pending


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
