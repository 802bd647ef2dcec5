"""A finding: one way what was read differs from what monitoring.yaml (or the guide) expects, in
one line naming the alert or object, the field, expected and actual."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    alert: str
    field: str
    expected: object
    actual: object
    kind: str = "field"
    """"field" (a declared value differs), "semantic" (configured, but does not mean what the guide
    means) or "routing" (§3 severity routing)."""
    source: str = ""
    hint: str = ""

    def line(self) -> str:
        text = f"{self.alert}: {self.field} expected {self.expected}, actual {self.actual}"
        if self.source:
            text += f" ({self.source})"
        if self.hint:
            text += f" — {self.hint}"
        return text
