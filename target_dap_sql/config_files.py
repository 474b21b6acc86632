"""Reading `--config` files: one clear error line for a file that is missing, not JSON or not an
object (the SDK's own reader lets these escape as tracebacks)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from target_dap_sql.errors import ConfigError


def read_config_files(paths: Sequence[str]) -> tuple[dict[str, Any], bool]:
    """The merged settings of ``paths`` (later files win, as in the SDK) and whether ``ENV`` (read
    TARGET_DAP_SQL_* variables too) was among them."""
    merged: dict[str, Any] = {}
    for path in (p for p in paths if p != "ENV"):
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"--config {path}: no such file") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--config {path}: not a readable JSON file ({exc})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: not a JSON object, but {type(loaded).__name__}")
        merged.update(loaded)
    return merged, "ENV" in paths


def check_env_settings(properties: dict[str, Any], environ: dict[str, str] | Any) -> None:
    """With ``--config ENV``: one clear error for a TARGET_DAP_SQL_* number that does not parse
    (the SDK's parser raises a bare ValueError traceback)."""
    for name, prop in properties.items():
        variable = f"TARGET_DAP_SQL_{name.upper()}"
        raw = environ.get(variable)
        kinds = prop.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if raw is None or "string" in kinds:
            continue
        parse = int if "integer" in kinds else float if "number" in kinds else None
        try:
            if parse is not None:
                parse(raw)
        except ValueError:
            raise ConfigError(f"environment variable {variable}={raw!r}: not "
                              f"{'an integer' if parse is int else 'a number'}") from None
