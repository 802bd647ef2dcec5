"""Turning findings into a check's outcome: one failure message listing every mismatch."""

from __future__ import annotations

from collections.abc import Sequence

import pytest


def summary_line(findings: Sequence) -> str:
    """'Payment Failure Rate Spike: 2 mismatches (counting, actions)' — what the short summary shows."""
    subjects = list(dict.fromkeys(f.alert for f in findings))
    fields = ", ".join(dict.fromkeys(f.field for f in findings))
    count = f"{len(findings)} mismatch{'es' if len(findings) > 1 else ''}"
    return f"{'; '.join(subjects)}: {count} ({fields})"


def fail_with(findings: Sequence) -> None:
    """Fail the calling check with every finding, one line each (alert, field, expected, actual)."""
    __tracebackhide__ = True
    if findings:
        pytest.fail(summary_line(findings) + "\n" + "\n".join(f"  - {f.line()}" for f in findings),
                    pytrace=False)
