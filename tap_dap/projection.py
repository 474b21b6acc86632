"""Deselected properties removed from a whole block of DAP lines in C, when that is provably exact.

Decoding every row's ``value`` members to drop a few of them costs several times the splice-only
fast path (tap_dap.output), because each member becomes a Python object. Instead, for each
deselected property:

1. one msgspec call decodes only that member of every row's ``value`` (all else is skipped) and
   counts the rows that have it at the top level;
2. ``bytes.count`` counts ``"name":`` in the block. JSON escapes every quote inside strings, so
   this sequence only occurs as a member name; if the counts differ (the name also occurs in a
   nested object, in ``key`` or ``meta``, or with whitespace before the colon), the block takes
   the decoding path instead;
3. two regular expressions remove ``,"name":value`` and then a remaining first member
   ``"name":value,`` (or the only one), for scalar values; unless exactly the counted number of
   members was removed (an object or array value, unusual number formatting), the block takes
   the decoding path instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec
import orjson

# A JSON scalar as DAP writes it: a string (escapes included), a number, true, false or null.
_SCALAR = rb'(?:"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)'


class BlockStripper:
    """Removes the named top-level members of each line's ``value`` from a block of lines."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = sorted(names)
        fields = [(f"f{i}", msgspec.Raw | msgspec.UnsetType, msgspec.UNSET)
                  for i in range(len(self._names))]  # fmt: skip
        rename = {f"f{i}": name for i, name in enumerate(self._names)}
        members = msgspec.defstruct("DroppedMembers", fields, rename=rename, gc=False)
        line = msgspec.defstruct("DroppedLine", [("value", members | None, None)], gc=False)
        self._decoder = msgspec.json.Decoder(line)
        self._astuple = msgspec.structs.astuple
        self._needles = [orjson.dumps(name) + b":" for name in self._names]
        names = b"(?:" + b"|".join(re.escape(n) for n in self._needles) + b")"
        # One scan of the block per pass for all the names. The first pass removes members
        # after another one (with their comma); the second a remaining first (or only) member:
        # "{" is matched and put back rather than looked behind for, so that the engine can
        # search for the literal prefix instead of trying every position of the block.
        self._not_first = re.compile(rb"," + names + _SCALAR + rb"(?=[,}])")
        self._first = re.compile(rb"\{" + names + _SCALAR + rb",?")

    def strip(self, block: bytes) -> bytes | None:
        """The block without the members, or None when that cannot be done exactly."""
        try:
            rows = self._decoder.decode_lines(block)
        except msgspec.DecodeError:
            return None  # the decoding path names the bad line
        present = [0] * len(self._names)
        unset, astuple = msgspec.UNSET, self._astuple
        for row in rows:
            value = row.value
            if value is not None:
                for i, member in enumerate(astuple(value)):
                    if member is not unset:
                        present[i] += 1
        total = 0
        for needle, count in zip(self._needles, present, strict=True):
            if block.count(needle) != count:
                return None
            total += count
        if not total:
            return block
        # Every match holds exactly one occurrence of a name (a string value cannot hold an
        # unescaped quote), so removing `total` members removed every occurrence.
        block, removed = self._not_first.subn(b"", block)
        if removed < total:
            block, more = self._first.subn(b"{", block)
            removed += more
        if removed != total:
            return None
        return block
