"""Deselected properties cut out of the fast path's rows, proven absent once per block.

Deselecting properties should cost the tap next to nothing: it sends fewer bytes. The general
member rewriter (tap_dap.rewrite) proves each row exact on its own, with several scans of the
row per name, and costs more than the splice itself. :class:`Projection` only drops members (no
hashing) and splits the work in two:

- per row, while the row's value members are the last bytes of the output (each followed by a
  comma, as for the rewriter): one ``memchr`` for ``{``, then one search per name for
  ``,"name":``, which stops at the member (and most rows hold each column once, early or late)
  and cuts it with its value;
- per block: one msgspec pass over the block's RECORD lines, typed so that any top-level
  member of a deselected name left in a record fails it. msgspec compares decoded names, so
  this one pass, whatever the number of names, catches every spelling the search misses: a
  duplicated member, a member with JSON whitespace around it, a name spelled with ``\\u``
  escapes. Such a block (rare) is redone by the exact member rewriter, and checked again: a
  member in a row's key (one the source added: deselected names are never key properties) is
  found by neither, and that block is decoded (tap_dap.output.RecordEncoder._append_block).

Why a found ``,"name":`` is a member of the row's value: inside a JSON string every ``"`` is
escaped, so ``,"`` opens a string; the name's first character cannot follow a closing quote
(see :meth:`Projection.fits`); ``":`` then makes it a key. It is a top-level key when the
value holds no nested object: every ``{`` of the row must sit inside a string, which is certain
when the byte before it is none of ``:``, ``[``, ``,`` or whitespace (the only bytes a value
can follow); rows where that is not certain are decoded (tap_dap.rewrite.nested_object_possible).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec
import orjson

from tap_dap.rewrite import nested_object_possible
from tap_dap.schema import ALWAYS_SENT

_QUOTE, _BACKSLASH, _COMMA = b'"\\,'  # byte values, as bytearray items are
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# First bytes of a member value that make the row decoded: an array, an object (which
# nested_object_possible already sent away), JSON whitespace.
_NOT_SCALAR = frozenset(b"[{ \t\r\n")
# JSON whitespace and the bytes that may follow a closing quote: a name starting with one of
# them could be the tail of another string, so ,"name": would not prove a key.
_AFTER_A_STRING = frozenset(" \t\r\n,:]}")
_UNSPELLABLE = re.compile(r'["\\\x00-\x1f]')


class _Deselected:
    """The type of a deselected member in the block check: decoding any value into it fails."""


def _refuse(kind: type, value: object) -> object:
    raise ValueError("deselected member")


class Projection:
    """Drops the named top-level members of each row's value (see module doc)."""

    def __init__(self, dropped: Iterable[str]) -> None:
        names = sorted(dropped)
        needles = [b"," + orjson.dumps(n) + b":" for n in names]
        self._needles = tuple((needle, len(needle)) for needle in needles)
        # Field names must be identifiers; the names are any text, so they are renames.
        fields = {f"m{i}": name for i, name in enumerate(names)}
        members = msgspec.defstruct("Members", [(f, _Deselected, None) for f in fields],
                                    rename=fields, gc=False)  # fmt: skip
        line = msgspec.defstruct("Line", [("record", members)], gc=False)
        self._check = msgspec.json.Decoder(line, dec_hook=_refuse)

    @staticmethod
    def fits(dropped: Iterable[str]) -> bool:
        """Names the search can find: not the always-sent members, and not starting with a
        byte that may follow a closing quote (see module doc); msgspec, for the block check,
        takes no name with a quote, a backslash or a control character."""
        return all(
            n and n[0] not in _AFTER_A_STRING and n not in ALWAYS_SENT
            and not _UNSPELLABLE.search(n)
            for n in dropped
        )  # fmt: skip

    def apply(self, out: bytearray, at: int) -> bool:
        """Remove the members from the row's value members ``out[at:]`` (``out[at - 1]`` is the
        comma before the first); False (``out`` maybe changed) when the row must be decoded."""
        # Called once a row, hence byte indexing and finds rather than a regex match each
        # (measured: a third of the cost): the memchr for "{" alone decides for most rows.
        if out.find(b"{", at) >= 0 and nested_object_possible(out, at):
            return False
        for needle, length in self._needles:
            found = out.find(needle, at - 1)
            if found < 0:
                continue
            begin = found + length
            first = out[begin]
            if first == _QUOTE:
                end = out.find(b'"', begin + 1) + 1
                if out[end - 2] == _BACKSLASH:  # maybe an escaped quote: let the regex count
                    string = _STRING.match(out, begin)
                    if string is None:
                        return False
                    end = string.end()
            elif first in _NOT_SCALAR:
                return False  # an array, or whitespace before the value
            else:
                end = out.find(b",", begin)  # numbers and literals hold no comma
            if out[end] != _COMMA:
                return False  # whitespace after the value
            del out[found:end]
        return True

    def block_is_exact(self, out: bytearray, start: int) -> bool:
        """True when no RECORD line from ``start`` on holds a deselected member at the top level
        of its record (decoded rows never do: decoding dropped them)."""
        with memoryview(out) as view, view[start:] as lines:
            try:
                self._check.decode_lines(lines)
            except msgspec.DecodeError:  # ValidationError included: a member was left
                return False
        return True
