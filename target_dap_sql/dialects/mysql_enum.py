"""MySQL/MariaDB inline ENUMs: reading the labels of an existing column and planning its evolution.

Labels are compared case-sensitively (DAP labels such as 'StudentEnrollment' are case-sensitive and
the official layout stores them `COLLATE ascii_bin`). Versions of target-dap-sql before this module
read the column type lower-cased and "evolved" such an ENUM into lower-cased copies followed by the
real labels ('studentenrollment', …, 'StudentEnrollment', …), after which every run failed with
"duplicated value in ENUM". `plan_enum` recognises those copies so the next run repairs the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

# What a backslash escape in information_schema.columns.column_type stands for (MariaDB and MySQL
# write NUL, newline, CR and backslash escaped, a quote doubled; any other `\x` is x).
_ESCAPES = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "Z": "\x1a"}


def enum_labels(column_type: str) -> list[str]:
    """The labels of `enum('a','b',…)` as the server reports the column type, unescaped."""
    inner = column_type[column_type.index("(") + 1: column_type.rindex(")")]
    labels: list[str] = []
    i, n = 0, len(inner)
    while i < n:
        if inner[i] != "'":
            i += 1  # the commas between labels
            continue
        i += 1
        label: list[str] = []
        while i < n:
            char = inner[i]
            if char == "\\" and i + 1 < n:
                label.append(_ESCAPES.get(inner[i + 1], inner[i + 1]))
                i += 2
            elif char == "'" and inner[i + 1: i + 2] == "'":
                label.append("'")
                i += 2
            elif char == "'":
                i += 1
                break
            else:
                label.append(char)
                i += 1
        labels.append("".join(label))
    return labels


def as_reported(label: str) -> str:
    """A label as information_schema shows it: utf8mb3 there, so a character outside the Basic
    Multilingual Plane (an emoji) reads as '?' although the column stores it whole."""
    return "".join("?" if ord(char) > 0xFFFF else char for char in label)


def restore_reported(current: Sequence[str], schema: Sequence[str]) -> list[str]:
    """The column's labels with each '?'-for-emoji form read back as the schema label it is.

    Several schema labels can read the same ('emoji😀' and a real 'emoji?'): they are taken in
    schema order, which is the order the column got them in.
    """
    unused: dict[str, list[str]] = {}
    for label in schema:
        unused.setdefault(as_reported(label), []).append(label)
    restored = []
    for label in current:
        candidates = unused.get(label)
        restored.append(candidates.pop(0) if candidates else label)
    return restored


def column_labels(column_type: str, schema: Sequence[str]) -> list[str]:
    """The labels of an existing ENUM column (its information_schema type), as stored."""
    return restore_reported(enum_labels(column_type), [w.rstrip(" ") for w in schema])


class EnumPlan(NamedTuple):
    labels: list[str]  # the labels the column should have, in order
    renames: dict[str, str]  # lower-cased copy -> the schema label its rows move to

    def changes(self, current: Sequence[str]) -> bool:
        return list(current) != self.labels


def plan_enum(current: Sequence[str], schema: Sequence[str], *, case_blind: bool) -> EnumPlan:
    """The labels an existing ENUM column should have for `schema`'s labels.

    Order is kept and new schema labels are appended; labels the schema dropped stay so no stored
    row breaks. A label is a lower-cased copy left by an older version (and its rows move to the
    schema label) only when it is not a schema label itself, is the lower case of exactly one
    schema label, and that label is in the column too (or the column compares case-blindly, where
    the old version's lossy MODIFY had already turned the rows lower-case). A genuine label DAP
    respelt only in case ('course' -> 'Course'; DAP does not do this) cannot be told from such a
    copy: it is kept by the run that adds the new spelling and folded into it by the next.
    """
    wanted = [label.rstrip(" ") for label in schema]
    current = restore_reported(current, wanted)
    renames: dict[str, str] = {}
    for label in current:
        if label in wanted or label != label.lower():
            continue
        matches = [w for w in wanted if w.lower() == label and w != label]
        if len(matches) == 1 and (matches[0] in current or case_blind):
            renames[label] = matches[0]
    labels: list[str] = []
    for label in current:
        target = renames.get(label, label)
        if target not in labels:
            labels.append(target)
    labels += [w for w in wanted if w not in labels]
    return EnumPlan(labels, renames)
