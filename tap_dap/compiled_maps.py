"""Stream maps simple enough to run as byte rewrites on the fast path (tap_dap.rewrite).

A stream whose one map only drops properties (``p: null``) and hashes properties in place
(``md5(p)``, ``sha256(p + config['salt'])``, optionally ``... if p is not None else None``),
with or without an ``__alias__``, needs no per-record evaluation: :func:`compiled_map` turns its
configuration into a :class:`CompiledMap` the record encoder applies to each row's bytes. Every
other map (filters, ``__else__``, splits, key changes, flattening, other expressions) returns
None and runs through the SDK's mapper (tap_dap.mapping.MappedRecords).
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from singer_sdk.mapper import CustomStreamMap, StreamMap

from tap_dap.mapping import DIGESTS
from tap_dap.rewrite import HashRule
from tap_dap.schema import ALWAYS_SENT, StreamSchema

# Names an SDK map expression resolves to something else than the property of that name
# (the whole record, the map's config, the faker, the stream's name) or that would shadow a
# function: a stream with such a property takes the SDK's path.
_EXPRESSION_NAMES = frozenset({*DIGESTS, "config", "record", "_", "self", "fake",
                               "__stream_name__", "__original_stream_name__"})  # fmt: skip


@dataclass(frozen=True)
class CompiledMap:
    """A stream's map that the fast path applies as bytes (tap_dap.rewrite): properties dropped
    (``prop: null``) and hashed in place, under an optional alias."""

    alias: str
    dropped: frozenset[str]
    hashed: dict[str, HashRule]


def compiled_map(
    stream_maps: Mapping[str, Any],
    map_config: Mapping[str, Any],
    stream_name: str,
    maps: list[StreamMap],
    sent: StreamSchema,
) -> CompiledMap | None:
    """The stream's map as a CompiledMap, or None when it needs the SDK's per-record path:
    one map, no flattening, no filter, no ``__else__``, no key change, and every expression a
    hash of the property it replaces (``md5(p)``, ``sha256(p + config['salt'])``, optionally
    ``... if p is not None else None``)."""
    if len(maps) != 1 or type(maps[0]) is not CustomStreamMap or maps[0].flattening_enabled:
        return None
    stream_map = maps[0]
    if list(stream_map.transformed_key_properties or []) != list(sent.key_properties):
        return None
    entries = [d for k, d in stream_maps.items()
               if not k.startswith("__") and fnmatch.fnmatch(stream_name, k)]  # fmt: skip
    if len(entries) != 1 or not isinstance(entries[0], Mapping):
        return None
    properties = sent.schema["properties"]
    untouchable = ALWAYS_SENT | set(sent.key_properties)
    if _EXPRESSION_NAMES & set(properties):
        return None
    dropped: set[str] = set()
    hashed: dict[str, HashRule] = {}
    for name, expression in entries[0].items():
        if name == "__alias__":
            continue
        if name.startswith("__") or name not in properties or name in untouchable:
            return None
        if expression is None:
            dropped.add(name)
            continue
        rule = _hash_rule(name, expression, map_config) if isinstance(expression, str) else None
        if rule is None:
            return None
        hashed[name] = rule
    return CompiledMap(stream_map.stream_alias, frozenset(dropped), hashed)


def _hash_rule(name: str, expression: str, map_config: Mapping[str, Any]) -> HashRule | None:
    try:
        node = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError:
        return None
    guarded = False
    if isinstance(node, ast.IfExp):
        test = node.test
        if not (
            isinstance(test, ast.Compare)
            and _is_name(test.left, name)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.IsNot)
            and _is_constant(test.comparators[0], type(None))
            and _is_constant(node.orelse, type(None))
        ):
            return None
        node, guarded = node.body, True
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in DIGESTS
        and len(node.args) == 1
        and not node.keywords
    ):
        return None
    parts = _concatenated(node.args[0])
    if sum(_is_name(part, name) for part in parts) != 1:
        return None
    texts: list[str] = []
    for part in parts:
        if _is_name(part, name):
            texts.append("\0")
        elif _is_constant(part, str):
            texts.append(part.value)  # type: ignore[attr-defined]
        elif (
            isinstance(part, ast.Subscript)
            and _is_name(part.value, "config")
            and _is_constant(part.slice, str)
            and isinstance(map_config.get(part.slice.value), str)  # type: ignore[attr-defined]
        ):
            texts.append(map_config[part.slice.value])  # type: ignore[attr-defined]
        else:
            return None
    position = [i for i, part in enumerate(parts) if _is_name(part, name)][0]
    return HashRule(
        DIGESTS[node.func.id],
        "".join(texts[:position]).encode(),
        "".join(texts[position + 1 :]).encode(),
        null_ok=guarded or len(parts) == 1,  # md5(None) is None; None + "salt" fails
    )


def _concatenated(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _concatenated(node.left) + _concatenated(node.right)
    return [node]


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_constant(node: ast.expr, kind: type) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is kind
