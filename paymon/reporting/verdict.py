"""The one-screen verdict: each guide criterion with pass / warning / fail / could not check, a
one-line reason, and the exit code of the run.

A criterion is judged from all its checks (the tests carrying its `criterion` marker):

    fail             a check failed: the setup differs from monitoring.yaml
    could not check  no check failed, but one could not run (token, scope, API down)
    warning          everything that ran passed, but a check was skipped or xfailed, or marked
                     itself ("verdict", "warning") — nothing is wrong, someone should look
    pass             every check passed

Exit codes: 0 every criterion passed (warnings included), 1 a criterion failed, 3 no criterion
failed but at least one could not be checked. A failure wins over "could not check": the gate
has already found something wrong, whatever it could not see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from paymon.reporting.guide import sort_key

PASS, WARNING, FAIL, COULD_NOT_CHECK = "pass", "warning", "fail", "could not check"
_RANK = {PASS: 0, WARNING: 1, COULD_NOT_CHECK: 2, FAIL: 3}

EXIT_OK, EXIT_FAILED, EXIT_COULD_NOT_CHECK = 0, 1, 3

GENERIC_WARNING = "the check reported a warning"
"""A warning's reason until the check's own warning text arrives (fixtures/reporting.py)."""

NO_CRITERION = "(no criterion)"
"""Where a check without a `criterion` marker is counted, so a failure never goes unreported."""


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default=PASS)


def first_reason(text: str) -> str:
    """The line that says why: the first finding ("  - alert: field expected x, actual y") of a
    failure message, else its first non-empty line without pytest's "Failed: " prefix."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for line in lines:
        if line.startswith("- "):
            return line[2:]
    return lines[0].removeprefix("Failed: ").removeprefix("E   ") if lines else ""


@dataclass
class CheckResult:
    """One check (test) with the worst outcome of its setup, call and teardown."""

    nodeid: str
    criterion: str
    status: str = PASS
    reason: str = ""

    def record(self, status: str, reason: str = "") -> None:
        if _RANK[status] > _RANK[self.status]:
            self.status, self.reason = status, reason


@dataclass
class CriterionVerdict:
    criterion: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks)

    @property
    def reason(self) -> str:
        return next((c.reason for c in self.checks if c.status == self.status and c.reason), "")

    @property
    def counted(self) -> str:
        bad = sum(1 for c in self.checks if c.status == self.status)
        total = len(self.checks)
        return f"{total} check{'s' if total != 1 else ''}" if self.status == PASS else f"{bad} of {total} checks"


def judge(checks: Iterable[CheckResult]) -> list[CriterionVerdict]:
    by_criterion: dict[str, CriterionVerdict] = {}
    for check in checks:
        by_criterion.setdefault(check.criterion, CriterionVerdict(check.criterion)).checks.append(check)
    return sorted(by_criterion.values(), key=lambda v: sort_key(v.criterion))


def exit_code(verdicts: Iterable[CriterionVerdict]) -> int:
    overall = worst(v.status for v in verdicts)
    return {FAIL: EXIT_FAILED, COULD_NOT_CHECK: EXIT_COULD_NOT_CHECK}.get(overall, EXIT_OK)


def render(verdicts: list[CriterionVerdict], width: int = 120) -> list[str]:
    """Per criterion one line (status, criterion, how many checks) and, unless it passed, one
    indented line with the reason; then the overall line. Fits one screen."""
    label_width = len(COULD_NOT_CHECK)
    lines = []
    for v in verdicts:
        lines.append(_fit(f"{v.status.upper():<{label_width}}  {v.criterion} ({v.counted})", width))
        if v.status != PASS and v.reason:
            lines.append(_fit(f"{'':<{label_width}}    {v.reason}", width))
    lines.append(overall_line(verdicts))
    return lines


def overall_line(verdicts: list[CriterionVerdict]) -> str:
    code = exit_code(verdicts)
    tally = {s: sum(1 for v in verdicts if v.status == s) for s in (PASS, WARNING, FAIL, COULD_NOT_CHECK)}
    summary = ", ".join(f"{n} {s}" for s, n in tally.items() if n)
    meaning = {EXIT_OK: "all criteria hold", EXIT_FAILED: "a criterion failed",
               EXIT_COULD_NOT_CHECK: "could not check every criterion"}[code]
    noun = "criterion" if len(verdicts) == 1 else "criteria"
    return f"{len(verdicts)} {noun}: {summary} -> exit {code} ({meaning})"


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def as_json(verdicts: list[CriterionVerdict]) -> dict:
    """The run's summary as stored for the weekly review (see weekly.py)."""
    return {
        "exit_code": exit_code(verdicts),
        "criteria": [
            {"criterion": v.criterion, "status": v.status, "reason": v.reason,
             "checks": len(v.checks), "failing": sum(1 for c in v.checks if c.status in (FAIL, COULD_NOT_CHECK))}
            for v in verdicts
        ],
    }
