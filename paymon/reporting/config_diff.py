"""A config check's failure message back into a table: the "config diff" attachment.

`fixtures.outcome.fail_with` lists every finding as one line, `Finding.line()`:

    - <alert>: <field> expected <expected>, actual <actual>[ (<where>)][ — <hint>]

The checks raise only that text, so the table is read back from it; tests/test_reporting.py
round-trips real `Finding`s so a change of that format breaks a test, not the report.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import astuple, dataclass, fields

_FINDING = re.compile(r"^\s*- (?P<alert>.+?): (?P<field>.+?) expected (?P<expected>.*?), actual (?P<actual>.*)$")
_HINT = " — "


@dataclass(frozen=True)
class Row:
    alert: str
    field: str
    expected: str
    actual: str
    where: str = ""
    hint: str = ""


def parse_row(line: str) -> Row | None:
    match = _FINDING.match(line)
    if not match:
        return None
    actual, _, hint = match["actual"].partition(_HINT)
    where = ""
    # `where` is the Sentry object(s) the finding came from, always the last parenthesised part.
    if actual.endswith(")") and " (" in actual:
        head, _, tail = actual.rpartition(" (")
        actual, where = head, tail[:-1]
    return Row(match["alert"], match["field"], match["expected"], actual, where, hint)


def parse_rows(message: str) -> list[Row]:
    return [row for row in map(parse_row, (message or "").splitlines()) if row is not None]


def to_csv(rows: list[Row]) -> str:
    """CSV with a header row: Allure shows a CSV attachment as a table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f.name for f in fields(Row)])
    writer.writerows(astuple(row) for row in rows)
    return out.getvalue()
