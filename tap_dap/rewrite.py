"""Value members removed or hashed in place on the fast path, when that is provably exact.

Deselected properties (catalog) and stream maps of the form ``prop: null`` or
``prop: "sha256(prop + config['salt'])"`` are the common ways to keep PII out of a warehouse.
Decoding every row into Python objects to do either costs several times the splice-only fast
path (tap_dap.output), so the encoder rewrites each row's value members as bytes instead.

The encoder calls :meth:`MemberRewriter.apply` just after splicing a row's value members, while
they are the last bytes of the output and each one is followed by a comma (the key's closing
brace before them became a comma too). The search is for the quoted name, ``"name"``; an
occurrence between a comma and a colon (``,"name":``) is a member of that name, and every
member of that name is found, when:

- the name is plain (letters, digits, ``_.-``, so its JSON spelling has no escape and cannot
  continue a string's closing quote): a quote inside a string is always escaped, so a quote
  after a comma, or after whitespace, opens a string, and ``"name"`` then followed by a colon
  is a key;
- the value has no nested object, so none holds a member of that name: every ``{`` in it is
  inside a string (:func:`nested_object_possible`);
- the value has no ``\\u`` or ``\\/``: the only ways to spell a plain name differently, which
  would hide a member from the search;
- no occurrence has JSON whitespace on either side (``, "name" :`` is a member too, but
  JSON whitespace may also surround a string value equal to the name): such a row takes
  the exact path. Other occurrences (``:"name"``, ``["name"``, ``\\"name"``) are strings
  that are no key, and are left alone.

Rows that break a condition, and members whose value is not a simple scalar (or, for hashing,
a string without escapes), return False: the encoder then takes the exact path for that row
(a full decode, and the SDK's own stream map for hashing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import orjson

# Unrolled (runs of plain bytes, then one escape): an alternation per byte costs ~30 times more,
# seconds for a long text column whose first quote is escaped.
_STRING_THEN_COMMA = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*",')
_QUOTE, _BACKSLASH, _COMMA, _COLON = b'"\\,:'  # byte values, as bytearray items are
# First bytes of the values that hold no comma: numbers, true, false, null.
_LITERAL_START = frozenset(b"-0123456789tfn")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_NULL_THEN_COMMA = b"null,"


def is_plain_name(name: str) -> bool:
    return _PLAIN_NAME.fullmatch(name) is not None


# Bytes a structural "{" can follow: a key's colon, an array's "[" or ",", JSON whitespace.
_VALUE_FOLLOWS = frozenset(b":[, \t\r\n")


def nested_object_possible(out: bytearray, at: int) -> bool:
    """Whether ``out[at:]`` (a row's value members) may hold a nested object. A ``{`` right
    after any other byte is inside a string (a value only follows those bytes), so text such as
    ``"{\\"json\\": 1}"`` keeps its row on the byte path; one ``memchr`` for most rows."""
    brace = out.find(b"{", at)
    while brace >= 0:
        if out[brace - 1] in _VALUE_FOLLOWS:
            return True
        brace = out.find(b"{", brace + 1)
    return False


@dataclass(frozen=True)
class HashRule:
    """``digest(before + value + after).hexdigest()`` of a string value (a stream map such as
    ``sha256(email + config['salt'])``); ``null_ok``: a null or absent value stays null (else
    the expression fails on it, which the exact path reports)."""

    digest: Callable[[bytes], object]
    before: bytes = b""
    after: bytes = b""
    null_ok: bool = True


class MemberRewriter:
    """Removes and hashes the named top-level members of one row's value (see module doc)."""

    def __init__(self, dropped: Iterable[str], hashed: Mapping[str, HashRule]) -> None:
        names = [*dropped, *hashed]
        #: A name the search cannot find exactly: every row takes the exact path.
        self.exact_only = not all(is_plain_name(n) for n in names)
        self._drops = [orjson.dumps(n) for n in dropped]
        self._hashes = [(orjson.dumps(n), rule) for n, rule in hashed.items()]

    def apply(self, out: bytearray, at: int) -> bool:
        """Rewrite the members in ``out[at:]``; False (``out`` possibly changed) when the row
        must take the exact path instead."""
        if self.exact_only or nested_object_possible(out, at):
            return False
        # One memchr for a backslash first: most rows have none, and the two-byte searches
        # cost a full scan of the row each.
        if out.find(b"\\", at) >= 0 and (out.find(b"\\u", at) >= 0 or out.find(b"\\/", at) >= 0):
            return False
        for quoted in self._drops:
            # Every member goes, a duplicated one too, as decoding would drop both.
            found = _next_member(out, quoted, at)
            while found >= 0:
                end = _member_end(out, found + len(quoted) + 1)
                if end < 0:
                    return False
                del out[found:end]
                found = _next_member(out, quoted, found)
            if found == _SPACED:
                return False
        for quoted, rule in self._hashes:
            found = _next_member(out, quoted, at)
            if found < 0:
                if found == _SPACED or not rule.null_ok:
                    return False
                continue
            begin = found + len(quoted) + 1
            end = _member_end(out, begin)
            if out[begin] != _QUOTE or end < 0 or out.find(b"\\", begin, end) >= 0:
                if rule.null_ok and out.startswith(_NULL_THEN_COMMA, begin):
                    end = begin + len(_NULL_THEN_COMMA)
                else:
                    return False  # escapes, a number, a boolean, or null the expression fails on
            else:
                text = rule.before + out[begin + 1 : end - 2] + rule.after
                digest = b'"%s"' % rule.digest(text).hexdigest().encode()
                out[begin : end - 1] = digest
                end = begin + len(digest) + 1
            if _next_member(out, quoted, end) != _NONE:
                return False  # duplicated (decoding keeps the last one), or spelled with spaces
        return True


#: _next_member found no member / found one spelled with whitespace (the exact path's job).
_NONE, _SPACED = -1, -2
_WHITESPACE = frozenset(b" \t\n\r")


def _next_member(out: bytearray, quoted: bytes, start: int) -> int:
    """Where the next member named ``quoted`` (its JSON spelling) starts in ``out[start:]``,
    _NONE, or _SPACED for an occurrence with whitespace around it (see module doc)."""
    found = out.find(quoted, start)
    while found >= 0:
        before, after = out[found - 1], out[found + len(quoted)]
        if before == _COMMA and after == _COLON:
            return found
        if before in _WHITESPACE or after in _WHITESPACE:
            return _SPACED
        found = out.find(quoted, found + len(quoted))
    return _NONE


def _member_end(out: bytearray, begin: int) -> int:
    """Where the member whose value starts at ``begin`` ends (after its comma); -1 for a value
    that is not a scalar right after the colon. Numbers, true, false and null hold no comma; a
    string's closing quote is the first quote not escaped."""
    if out[begin] == _QUOTE:
        close = out.find(b'"', begin + 1)
        if out[close - 1] == _BACKSLASH:
            match = _STRING_THEN_COMMA.match(out, begin)  # escapes: let the regex count them
            return match.end() if match else -1
        return close + 2 if out[close + 1] == _COMMA else -1
    if out[begin] not in _LITERAL_START:
        return -1  # an array, or whitespace after the colon: the next comma may be inside it
    return out.find(b",", begin) + 1 or -1
