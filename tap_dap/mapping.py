"""Stream maps and flattening (the SDK's `stream_maps`, `stream_map_config`, `flattening_*`).

A stream without maps or flattening stays on the splice-only fast path (tap_dap.output). A mapped
stream takes the fast path's RECORD lines, decodes each record and runs it through the SDK's own
stream maps (singer_sdk.mapper), so aliases, dropped and computed properties, `__filter__`,
`__else__`, dropped and split streams behave exactly as in any SDK tap. Differences, on purpose:

- DAP leaves null members out of its rows; a mapped record carries every schema property (absent
  = null), so an expression over a nullable property sees ``None`` instead of failing on a name
  that is not defined. ``md5``/``sha256`` of ``None`` is ``None``: hashing PII must not turn a
  missing value into the hash of the text "None", nor stop the run.
- The DAP provenance (`x-dap`) follows an alias (not onto extra `__source__` copies). Properties
  a map computes or redefines are taken out of it (target-dap-sql gives them a column of their
  own type); a map that changes the key
  properties, drops all unmapped properties (`__else__: null`) or flattening drops it entirely:
  such a stream no longer has the DAP table's shape, and targets treat it like any other stream.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import orjson
from singer_sdk.exceptions import MapExpressionError, StreamMapConfigError
from singer_sdk.mapper import (
    PluginMapper,
    RemoveRecordTransform,
    SameRecordTransform,
    StreamMap,
)

from tap_dap.errors import ConfigurationError, TapDapError
from tap_dap.schema import ANNOTATION, StreamSchema

_SPECIAL_KEYS = ("__alias__", "__source__", "__filter__", "__else__", "__key_properties__")


class StreamMapError(TapDapError):
    """A stream map failed on a record: names the stream, the map and the record's key."""


class _Line(msgspec.Struct, gc=False):
    record: dict[str, Any]
    version: int | None = None


_CHUNK_DECODER = msgspec.json.Decoder(list[_Line])
# The SDK's map evaluator keeps the record it evaluates in an attribute (names) between setting
# it and evaluating: two threads mapping records of one stream at once (the prefetch workers
# send a compiled map's exact-path rows through the SDK's map) would hash each other's values.
# One lock for all: instances for a stream share its StreamMap objects, and the exact path
# is rare enough that streams never wait on each other for long.
_TRANSFORM_LOCK = threading.Lock()
_encode = msgspec.json.Encoder(enc_hook=str).encode


def _null_safe(digest: Any) -> Any:
    def hashed(value: Any) -> str | None:
        return None if value is None else digest(str(value).encode("utf-8")).hexdigest()

    return hashed


DIGESTS = {"md5": hashlib.md5, "sha256": hashlib.sha256}
NULL_SAFE_FUNCTIONS = {name: _null_safe(digest) for name, digest in DIGESTS.items()}


def without_values(text: str, record: Mapping[str, Any]) -> str:
    """An error text, unless it quotes a value of the record (e.g. ``int()``'s "invalid literal
    for int() with base 10: 'Jane Doe'"): maps exist to keep such values out of the warehouse,
    so they stay out of logs too."""
    for value in record.values():
        if isinstance(value, str) and len(value) > 1 and value in text:
            return "(message withheld: it quotes a value of the record)"
    return text


def is_plain(stream_maps: list[StreamMap], stream_name: str) -> bool:
    """True when the stream's maps change nothing: the fast path may write its records."""
    return (
        len(stream_maps) == 1
        and type(stream_maps[0]) is SameRecordTransform
        and stream_maps[0].stream_alias == stream_name
        and not stream_maps[0].flattening_enabled
    )


def register(mapper: PluginMapper, stream_name: str, sent: StreamSchema) -> None:
    """(Re-)register the stream's maps for the schema it sends; config errors name the stream."""
    try:
        mapper.register_raw_stream_schema(
            stream_name, copy.deepcopy(sent.schema), list(sent.key_properties)
        )
    except (MapExpressionError, StreamMapConfigError, NotImplementedError) as exc:
        raise ConfigurationError(f"setting stream_maps, stream {stream_name!r}: {exc}") from None
    for stream_map in mapper.stream_maps[stream_name]:
        evaluator = getattr(stream_map, "expr_evaluator", None)
        if evaluator is not None:
            evaluator.functions.update(NULL_SAFE_FUNCTIONS)


def check_config(stream_maps: Mapping[str, Any], schemas: Mapping[str, StreamSchema]) -> None:
    """Refuse what the SDK would silently ignore: maps of streams that do not exist, dropping a
    property that does not exist, and two streams written under one name."""
    names = sorted(schemas)
    for key, definition in stream_maps.items():
        if key.startswith("__"):
            continue
        source = key
        if isinstance(definition, Mapping) and isinstance(definition.get("__source__"), str):
            source = definition["__source__"]
        matches = [n for n in names if fnmatch.fnmatchcase(n, source)]
        if not matches:
            raise ConfigurationError(
                f"setting stream_maps: map {key!r} names stream {source!r}, which does not exist "
                f"(streams: {', '.join(names) or 'none'})"
            )
        if not isinstance(definition, Mapping):
            continue
        if "__alias__" in definition:
            _check_alias(key, definition["__alias__"], matches)
        for prop, expression in definition.items():
            if prop in _SPECIAL_KEYS or expression is not None:
                continue
            for name in matches:
                if prop not in schemas[name].schema["properties"]:
                    raise ConfigurationError(
                        f"setting stream_maps: map {key!r} drops property {prop!r}, which "
                        f"stream {name!r} does not have"
                    )


def _check_alias(key: str, alias: Any, streams: list[str]) -> None:
    # The SDK evaluates every alias while registering any stream, so its error would name
    # whichever stream came first; and an empty name would make a table without a name.
    for name in streams:
        try:
            result = PluginMapper._eval_stream(alias, name) if isinstance(alias, str) else None
        except MapExpressionError as exc:
            raise ConfigurationError(
                f"setting stream_maps: map {key!r}: alias {alias!r} is not a name or an "
                f"expression ({exc})"
            ) from None
        if not isinstance(result, str) or not result.strip():
            raise ConfigurationError(
                f"setting stream_maps: map {key!r}: alias {alias!r} gives no stream name for "
                f"stream {name!r}"
            )


def check_aliases(maps_by_stream: Mapping[str, list[StreamMap]]) -> None:
    """Two source streams under one output name would mix two tables in one."""
    writers: dict[str, str] = {}
    for stream_name, stream_maps in sorted(maps_by_stream.items()):
        for stream_map in stream_maps:
            if isinstance(stream_map, RemoveRecordTransform):
                continue
            alias = stream_map.stream_alias
            other = writers.setdefault(alias, stream_name)
            if other != stream_name:
                raise ConfigurationError(
                    f"setting stream_maps: streams {other!r} and {stream_name!r} would both be "
                    f"written as stream {alias!r}"
                )


def computed_properties(
    stream_maps: Mapping[str, Any], stream_name: str, stream_map: StreamMap
) -> set[str]:
    """Properties the map's configuration computes with an expression (as the SDK pairs
    configuration entries with streams: ``__source__`` maps are extra ones, named by their key;
    any other entry whose key matches the stream is its primary map)."""
    computed: set[str] = set()
    for key, definition in stream_maps.items():
        if key.startswith("__") or not isinstance(definition, Mapping):
            continue
        source = definition.get("__source__")
        if source is not None:
            mine = fnmatch.fnmatch(stream_name, source) and key == stream_map.stream_alias
        else:
            mine = fnmatch.fnmatch(stream_name, key)
        if mine:
            computed.update(
                k for k, v in definition.items() if k not in _SPECIAL_KEYS and isinstance(v, str)
            )
    return computed


def mapped_schema(
    stream_map: StreamMap, sent: StreamSchema, computed: set[str], *, primary: bool
) -> dict[str, Any]:
    """The SCHEMA of one map's output, with the DAP provenance adjusted (see module doc).
    Extra copies of a stream (``__source__`` maps) never carry it: one DAP table has one
    bookmark, and the primary map's output is what continues the DAP table."""
    schema = copy.deepcopy(stream_map.transformed_schema)
    annotation = sent.schema.get(ANNOTATION)
    keys_changed = list(stream_map.transformed_key_properties or []) != list(sent.key_properties)
    if (
        annotation is None
        or not primary
        or keys_changed
        or stream_map.flattening_enabled
        or "meta" not in schema.get("properties", {})
    ):
        schema.pop(ANNOTATION, None)
        return schema
    original = sent.schema["properties"]
    changed = set(computed) | {
        name
        for name, node in schema["properties"].items()
        if name not in original or node != original[name]
    }
    annotation = copy.deepcopy(annotation)
    value = annotation["schema"].get("properties", {}).get("value")
    if changed and isinstance(value, dict):
        value["properties"] = {
            k: v for k, v in (value.get("properties") or {}).items() if k not in changed
        }
        if "required" in value:
            value["required"] = [k for k in value["required"] if k not in changed]
    schema[ANNOTATION] = annotation
    return schema


class MappedRecords:
    """Runs the fast path's RECORD lines of one stream through its stream maps."""

    def __init__(self, stream_name: str, stream_maps: list[StreamMap], sent: StreamSchema) -> None:
        self._stream = stream_name
        self._maps = [m for m in stream_maps if not isinstance(m, RemoveRecordTransform)]
        self._prefixes = [
            b'{"type":"RECORD","stream":' + orjson.dumps(m.stream_alias) + b',"record":'
            for m in self._maps
        ]
        self._nulls: dict[str, None] = dict.fromkeys(sent.schema["properties"])
        self._keys = list(sent.key_properties)
        #: Records written per output stream since the last reset (a snapshot's own count, once
        #: __filter__ has dropped what it drops).
        self.written: dict[str, int] = dict.fromkeys((m.stream_alias for m in self._maps), 0)

    def reset_counts(self) -> None:
        self.written = dict.fromkeys(self.written, 0)

    @property
    def writes_nothing(self) -> bool:
        return not self._maps

    def map_chunk(self, lines: Iterable[bytes]) -> tuple[bytearray, int]:
        """Mapped RECORD lines of the given ones, and how many were written."""
        out = bytearray()
        present = [line for line in lines if line]
        if not present:
            return out, 0
        # One decode call for the chunk (the fast path's lines are valid JSON by construction).
        messages = _CHUNK_DECODER.decode(b"[" + b",".join(present) + b"]")
        with _TRANSFORM_LOCK:
            written = self._map_messages(messages, out)
        return out, written

    def _map_messages(self, messages: list[_Line], out: bytearray) -> int:
        written = 0
        counts = [0] * len(self._maps)
        nulls = self._nulls
        for message in messages:
            # DAP leaves nulls out (see module doc). Filling them in always is cheaper than
            # retrying the records whose expressions miss a name: exceptions cost more.
            record = nulls | message.record
            suffix = b"}\n" if message.version is None else b',"version":%d}\n' % message.version
            for index, (stream_map, prefix) in enumerate(zip(self._maps, self._prefixes,
                                                             strict=True)):
                try:
                    mapped = stream_map.transform(record)
                except Exception as exc:  # any failure of a user expression, on one record
                    raise self._failure(stream_map, record, exc) from None
                if mapped is None:
                    continue
                out += prefix
                out += _encode(mapped)
                out += suffix
                counts[index] += 1
                written += 1
        for stream_map, count in zip(self._maps, counts, strict=True):
            self.written[stream_map.stream_alias] += count
        return written

    def _failure(self, stream_map: StreamMap, record: dict, exc: Exception) -> StreamMapError:
        # StreamSyncError adds the stream's name in front of this message.
        key = {k: record.get(k) for k in self._keys}
        cause = exc.__cause__ or exc
        reason = f"{type(cause).__name__}: {without_values(str(cause), record)}"
        if cause is not exc:
            reason = f"{exc} ({reason})"
        if "NoneType" in str(cause):
            reason += " - a property is null here; e.g. `f(x) if x is not None else None`"
        return StreamMapError(
            f"stream map {stream_map.stream_alias!r} failed on the record with key "
            f"{orjson.dumps(key, default=str).decode()}: {reason}"
        )
