"""Attach a review's plot (PNG) and tables (CSV) to the running check's Allure result."""

from __future__ import annotations


def attach(kind: str, result) -> None:
    """kind: "backtest", "thresholds", "alerts" or "failures"."""
    import allure
    from allure_commons.types import AttachmentType

    from paymon.reporting.review_plots import attachments

    for item in attachments(kind, result):
        allure.attach(item.body, name=item.name,
                      attachment_type=AttachmentType.PNG if item.kind == "png" else AttachmentType.CSV)
