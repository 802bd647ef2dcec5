"""How an alert's name is matched, everywhere paymon looks for one (configuration checks, the drill's
read-back, the reviews): case and runs of whitespace do not count. Sentry keeps a rule's name as it
was typed, and a rule the configuration checks accept must be one the drill recognises."""

from __future__ import annotations


def name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def mentions(text: str, name: str) -> bool:
    """Whether `text` (a Slack message, an incident title) names the alert `name`."""
    return bool(name.strip()) and name_key(name) in name_key(text)
