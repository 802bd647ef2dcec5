"""Turning findings into a check's outcome: one failure message listing every mismatch."""

from __future__ import annotations

from collections.abc import Sequence

import pytest


def fail_with(findings: Sequence) -> None:
    """Fail the calling check with every finding, one line each (alert, field, expected, actual)."""
    __tracebackhide__ = True
    if findings:
        count = f"{len(findings)} mismatch{'es' if len(findings) > 1 else ''}"
        pytest.fail(f"{count}:\n" + "\n".join(f"  - {f.line()}" for f in findings), pytrace=False)
