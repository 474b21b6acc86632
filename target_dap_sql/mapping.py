"""Stream maps and flattening on the target's input (the SDK's `stream_maps`,
`stream_map_config`, `flattening_*`), through the SDK's own mapper.

Streams without maps keep the fast record path (runs of RECORD lines decoded together); a mapped
stream's records are decoded one by one, transformed by each of its maps and handed to the sink
of each map's output stream. As in tap-dap (see tap_dap/mapping.py, whose rules this repeats for
the target's input): absent properties are null for expressions, `md5`/`sha256` of null is null,
the DAP provenance (`x-dap`) follows an alias minus the properties a map computes, and is dropped
where the output no longer has the DAP table's shape (flattening, new key properties, extra
`__source__` copies, `__else__: null`).
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from singer_sdk.exceptions import MapExpressionError, StreamMapConfigError
from singer_sdk.mapper import PluginMapper, RemoveRecordTransform, SameRecordTransform, StreamMap

from target_dap_sql.errors import ConfigError, InputError

ANNOTATION = "x-dap"
_SPECIAL = ("__alias__", "__source__", "__filter__", "__else__", "__key_properties__")
_encode = msgspec.json.Encoder(enc_hook=str).encode


def _null_safe(digest: Any) -> Any:
    def hashed(value: Any) -> str | None:
        return None if value is None else digest(str(value).encode("utf-8")).hexdigest()

    return hashed


_NULL_SAFE = {"md5": _null_safe(hashlib.md5), "sha256": _null_safe(hashlib.sha256)}


def _without_values(text: str, record: Mapping[str, Any]) -> str:
    """An error text, unless it quotes a value of the record (maps keep PII out of the
    warehouse; it stays out of logs too)."""
    for value in record.values():
        if isinstance(value, str) and len(value) > 1 and value in text:
            return "(message withheld: it quotes a value of the record)"
    return text


@dataclass(frozen=True)
class MappedOutput:
    """The SCHEMA of one map's output stream."""

    stream: str
    schema: dict[str, Any]
    key_properties: list[str]


class InputMaps:
    """The configured maps, applied per input stream."""

    def __init__(self, config: Mapping[str, Any], logger: Any) -> None:
        self._config_maps: Mapping[str, Any] = config.get("stream_maps") or {}
        self.enabled = bool(self._config_maps) or bool(config.get("flattening_enabled"))
        try:
            self._mapper = PluginMapper(plugin_config=copy.deepcopy(dict(config)), logger=logger)
        except (MapExpressionError, StreamMapConfigError) as exc:
            raise ConfigError(f"setting stream_maps: {exc}") from None
        refuse_static_merges(self._config_maps)
        self._mapped: dict[str, tuple[list[StreamMap], list[str], list[str]]] = {}
        #: Output stream → the input stream writing it (see _claim).
        self._writers: dict[str, str] = {}

    def register(self, stream: str, schema: dict[str, Any], keys: list[str]
                 ) -> list[MappedOutput] | None:
        """The output streams of an input stream's SCHEMA; None: the stream is not mapped."""
        self._mapped.pop(stream, None)
        if not self.enabled:
            return None
        try:
            self._mapper.register_raw_stream_schema(stream, copy.deepcopy(schema), list(keys))
        except (MapExpressionError, StreamMapConfigError, NotImplementedError) as exc:
            raise InputError(f"setting stream_maps: {exc}", stream=stream) from None
        maps = self._mapper.stream_maps[stream]
        if (len(maps) == 1 and type(maps[0]) is SameRecordTransform
                and maps[0].stream_alias == stream and not maps[0].flattening_enabled):
            self._claim(stream, [stream])
            return None
        self._claim(stream, [m.stream_alias for m in maps
                             if not isinstance(m, RemoveRecordTransform)])
        for stream_map in maps:
            evaluator = getattr(stream_map, "expr_evaluator", None)
            if evaluator is not None:
                evaluator.functions.update(_NULL_SAFE)
        self._mapped[stream] = (maps, list(schema.get("properties", {})), list(keys))
        return [MappedOutput(m.stream_alias, self._output_schema(stream, m, schema, keys, i == 0),
                             list(m.transformed_key_properties or []))
                for i, m in enumerate(maps) if not isinstance(m, RemoveRecordTransform)]

    def _claim(self, stream: str, outputs: list[str]) -> None:
        """Refuse a second input stream written under a name another one already writes:
        both would share one table (a DAP table's second snapshot replacing the first's rows,
        generic rows of two tables mixed under one key). Called at the SCHEMA, before any of
        the stream's records."""
        for output in outputs:
            other = self._writers.get(output, stream)
            if other != stream:
                raise InputError(f"setting stream_maps: streams {other!r} and {stream!r} would "
                                 f"both be written as stream {output!r}", stream=stream)
        for output in outputs:
            self._writers[output] = stream

    def is_mapped(self, stream: str | None) -> bool:
        return stream in self._mapped

    def outputs(self, stream: str) -> list[str]:
        """The output streams of a mapped input stream (for ACTIVATE_VERSION)."""
        maps = self._mapped[stream][0]
        return [m.stream_alias for m in maps if not isinstance(m, RemoveRecordTransform)]

    def transform(self, stream: str, raw: bytes) -> list[tuple[str, bytes]]:
        """The mapped records of one input record, as (output stream, record JSON)."""
        maps, properties, keys = self._mapped[stream]
        record = msgspec.json.decode(raw)
        if not isinstance(record, dict):
            raise InputError("RECORD's 'record' is not an object", stream=stream)
        record = dict.fromkeys(properties) | record  # absent = null (see module doc)
        out = []
        for stream_map in maps:
            if isinstance(stream_map, RemoveRecordTransform):
                continue
            try:
                mapped = stream_map.transform(record)
            except Exception as exc:  # any failure of a user expression, on one record
                key = _encode({k: record.get(k) for k in keys}).decode()
                cause = exc.__cause__ or exc
                raise InputError(
                    f"stream map '{stream_map.stream_alias}' failed on the record with key "
                    f"{key}: {type(cause).__name__}: {_without_values(str(cause), record)}",
                    stream=stream) from None
            if mapped is not None:
                out.append((stream_map.stream_alias, _encode(mapped)))
        return out

    def _output_schema(self, stream: str, stream_map: StreamMap, schema: dict[str, Any],
                       keys: list[str], primary: bool) -> dict[str, Any]:
        result = copy.deepcopy(stream_map.transformed_schema)
        annotation = schema.get(ANNOTATION)
        properties = result.get("properties", {})
        if (annotation is None or not primary or stream_map.flattening_enabled
                or list(stream_map.transformed_key_properties or []) != list(keys)
                or "meta" not in properties):
            result.pop(ANNOTATION, None)
            return result
        original = schema.get("properties", {})
        changed = self._computed(stream, stream_map) | {
            n for n, node in properties.items() if n not in original or node != original[n]}
        annotation = copy.deepcopy(annotation)
        value = annotation.get("schema", {}).get("properties", {}).get("value")
        if changed and isinstance(value, dict):
            value["properties"] = {k: v for k, v in (value.get("properties") or {}).items()
                                   if k not in changed}
            if "required" in value:
                value["required"] = [k for k in value["required"] if k not in changed]
        result[ANNOTATION] = annotation
        return result

    def _computed(self, stream: str, stream_map: StreamMap) -> set[str]:
        computed: set[str] = set()
        for key, definition in self._config_maps.items():
            if key.startswith("__") or not isinstance(definition, Mapping):
                continue
            source = definition.get("__source__")
            mine = (fnmatch.fnmatch(stream, source) and key == stream_map.stream_alias
                    if source is not None else fnmatch.fnmatch(stream, key))
            if mine:
                computed.update(k for k, v in definition.items()
                                if k not in _SPECIAL and isinstance(v, str))
        return computed


def refuse_static_merges(config_maps: Mapping[str, Any]) -> None:
    """Refuse at start-up maps that name two streams and write both under one name (the
    dynamic check, InputMaps._claim, catches the rest once the streams' SCHEMAs arrive).
    Only maps keyed by a stream name (not a pattern) tell which stream they read."""
    written: list[tuple[str, str]] = []  # (input stream, output stream)
    for key, definition in config_maps.items():
        if key.startswith("__") or definition is None or definition == "__NULL__":
            continue
        source, output = key, key
        if isinstance(definition, Mapping) and "__source__" in definition:
            source = str(definition["__source__"])  # `<output>: {__source__: <input>}`
        elif isinstance(definition, Mapping) and isinstance(definition.get("__alias__"), str):
            try:
                output = PluginMapper._eval_stream(definition["__alias__"], key)
            except MapExpressionError:
                continue  # the SDK's own error names it when the stream arrives
        if not any(c in source for c in "*?[") and isinstance(output, str):
            written.append((source, output))
    writers: dict[str, str] = {}
    for source, output in sorted(written):  # in tap-dap's order, so the line reads the same
        other = writers.setdefault(output, source)
        if other != source:
            raise ConfigError(f"setting stream_maps: streams {other!r} and {source!r} would both "
                              f"be written as stream {output!r}")
