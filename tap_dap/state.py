"""Reading and checking the tap's state: ``{"bookmarks": {"<ns>-<table>": {...}}}``.

A bookmark is ``{"timestamp": "<ISO 8601, Z>", "schema_version": <int>}``; the timestamp is the
snapshot's ``at`` or the last incremental's ``until`` and becomes the next query's ``since``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import IO, Any

from tap_dap.client import UnexpectedResponseError, parse_timestamp
from tap_dap.errors import ConfigurationError, StateError, TapDapError


def parse_user_timestamp(
    text: str, what: str, error: type[TapDapError] = ConfigurationError
) -> datetime:
    """A timestamp from the state or the config, by the client's rules (DAP's own format; a
    value without a zone is UTC); a malformed one is ``error`` naming ``what``."""
    try:
        return parse_timestamp(text, what)
    except UnexpectedResponseError as exc:
        raise error(exc.message) from None


def parse_bookmark_timestamp(text: str, what: str) -> datetime:
    return parse_user_timestamp(text, what, StateError)


def read_json_file_handle(handle: IO[str], what: str) -> dict[str, Any]:
    """Parse a JSON object from an open config/state/catalog file, or raise one clear error."""
    name = getattr(handle, "name", "<stream>")
    error = StateError if what == "state" else ConfigurationError
    try:
        data = json.loads(handle.read())
    except ValueError as exc:
        raise error(f"{what} file {name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise error(f"{what} file {name}: expected a JSON object, got {type(data).__name__}")
    return data


def read_config_files(paths: Sequence[str]) -> tuple[dict[str, Any], bool]:
    """Merge the ``--config`` files (later wins); ``ENV`` means "also read TAP_DAP_* variables".

    Replaces the SDK's reader, which lets a missing or malformed file escape as a traceback.
    Returns the merged settings and whether the environment is to be read.
    """
    config: dict[str, Any] = {}
    parse_env = False
    for path in paths:
        if path == "ENV":
            parse_env = True
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                config |= read_json_file_handle(handle, "config")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigurationError(f"config file {path}: cannot be read ({reason})") from None
    return config, parse_env


def validate_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """Check every bookmark; accept Meltano's ``{"singer_state": {...}}`` wrapper too."""
    if set(state) == {"singer_state"} and isinstance(state["singer_state"], Mapping):
        state = state["singer_state"]
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, Mapping):
        raise StateError("state: 'bookmarks' must be an object keyed by stream name")
    for stream, bookmark in bookmarks.items():
        where = f"state bookmark {stream!r}"
        if not isinstance(bookmark, Mapping):
            raise StateError(f"{where}: expected an object, got {type(bookmark).__name__}")
        timestamp = bookmark.get("timestamp")
        if timestamp is not None:
            if not isinstance(timestamp, str):
                raise StateError(f"{where}: 'timestamp' must be a string, got {timestamp!r}")
            parse_bookmark_timestamp(timestamp, f"{where}: 'timestamp'")
        version = bookmark.get("schema_version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise StateError(f"{where}: 'schema_version' must be an integer, got {version!r}")
    return dict(state)
