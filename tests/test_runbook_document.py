"""The runbook as a checked document: parsing (GitLab heading ids, numbered steps, the review line),
the findings, reading it (file, the sandbox's GitLab, what a wrong source answers) and the emulator's
GitLab behaviour (a private project's 404 without a token, 401 for a bad one)."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from paymon.clients.runbook import read_runbook
from paymon.config.settings import RunbookSettings
from paymon.config.spec import RunbookSpec, load_spec
from paymon.config.target import Target
from paymon.errors import AuthError, TargetUnavailable
from paymon.findings.runbook import heading_anchor, parse_runbook, procedure_findings, review_findings
from paymon.sandbox.faults import apply_fault
from paymon.sandbox.hub import SandboxClock
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from tests.conftest import REPO

SPEC = load_spec(REPO / "monitoring.yaml")
NEW_YEAR = datetime(2027, 1, 1, 0, 30, tzinfo=timezone.utc).timestamp()


def _at(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()


def test_heading_ids_follow_gitlab():
    assert heading_anchor("Test Mode in Production (CRITICAL)") == "test-mode-in-production-critical"
    assert heading_anchor("Payment Failure Spike") == "payment-failure-spike"
    assert heading_anchor("Webhook -- `route.ts` failures!") == "webhook-routets-failures"
    runbook = parse_runbook("## Steps\n1. a\n## Steps\n1. b\n")
    assert list(runbook.sections) == ["steps", "steps-1"]


def test_sections_count_numbered_steps_but_not_code_or_bullets():
    runbook = parse_runbook(
        "# Top\n**Last reviewed:** 2026-11-20\n"
        "### Usage Reporting Failure\n- a bullet\n```\n1. inside a fence\n# not a heading\n```\n"
        "### Test Mode in Production\n1. **Halt**\n2) redeploy\n   3. nested still counts\n")
    assert runbook.sections["usage-reporting-failure"].steps == 0
    assert runbook.sections["test-mode-in-production"].steps == 3
    assert "not-a-heading" not in runbook.sections
    assert runbook.last_reviewed.isoformat() == "2026-11-20"


def test_a_section_without_numbered_steps_is_a_finding():
    text = (REPO / "paymon/sandbox/worlds/runbook.md").read_text()
    start, end = text.index("### Usage Reporting Failure"), text.index("### Reconciliation Discrepancy")
    bulleted = "\n".join("- " + line[3:] if line[:1].isdigit() else line for line in text[start:end].splitlines())
    findings = procedure_findings(SPEC, parse_runbook(text[:start] + bulleted + "\n" + text[end:]), "test")
    assert [f.line() for f in findings] == [
        "runbook #usage-reporting-failure (for Usage Reporting Failure Rate, §6 procedure): numbered steps "
        "expected at least 1, actual 0 (test) — section 'Usage Reporting Failure' has no numbered list (1. ... 2. ...)"]


def test_golden_runbook_has_every_section():
    text = (REPO / "paymon/sandbox/worlds/runbook.md").read_text()
    assert procedure_findings(SPEC, parse_runbook(text), "golden") == []


@pytest.mark.parametrize("reviewed, verdict", [
    ("2026-12-01", "pass"),            # 31 days before New Year's Day
    ("2026-11-30", "stale"),           # 32 days
    ("2027-01-02", "pass"),            # a day ahead: time zones
    ("2027-01-05", "future"),
])
def test_review_is_judged_on_the_given_clock(reviewed, verdict):
    runbook = parse_runbook(f"Last reviewed: {reviewed}\n")
    findings = review_findings(SPEC.runbook, runbook, NEW_YEAR, "test")
    if verdict == "pass":
        assert findings == []
    else:
        assert len(findings) == 1 and findings[0].field == "last reviewed"
        assert ("in the future" in findings[0].actual) == (verdict == "future")


def test_no_review_line_is_a_finding():
    findings = review_findings(SPEC.runbook, parse_runbook("# Runbook\nLast reviewed: soon\n"), NEW_YEAR, "x")
    assert findings[0].actual == "unreadable ('Last reviewed: soon')"
    findings = review_findings(SPEC.runbook, parse_runbook("# Runbook\n"), NEW_YEAR, "x")
    assert findings[0].actual == "no such line"


def _sandbox_runbook(server) -> RunbookSettings:
    return Target("sandbox", sandbox=server.describe()).runbook(SPEC.runbook)


@pytest.mark.parametrize("start", ["2027-01-01T00:30:00", "2028-02-29T02:00:00"])
def test_the_sandbox_serves_a_runbook_reviewed_before_its_clock(start):
    with SandboxServer(golden_world("workflow"), clock=SandboxClock(start=_at(start))) as server:
        document = read_runbook(_sandbox_runbook(server))
        runbook = parse_runbook(document.text)
        assert procedure_findings(SPEC, runbook, document.where) == []
        assert review_findings(SPEC.runbook, runbook, server.clock.now(), document.where) == []
        # 12 days before the sandbox's start, whatever today is
        assert (datetime.fromisoformat(start).date() - runbook.last_reviewed).days == 12


def test_stale_world_fails_on_the_sandbox_clock():
    world = apply_fault(golden_world("workflow"), "runbook-stale")
    with SandboxServer(world, clock=SandboxClock(start=_at("2027-01-01T00:30:00"))) as server:
        runbook = parse_runbook(read_runbook(_sandbox_runbook(server)).text)
        findings = review_findings(SPEC.runbook, runbook, server.clock.now(), "x")
    assert findings[0].actual == "2026-06-15, 200 days before 2027-01-01"


def test_gitlab_hides_a_private_project_and_refuses_a_bad_token():
    with SandboxServer(golden_world("workflow")) as server:
        good = _sandbox_runbook(server)
        without = RunbookSettings(url=good.url)
        with pytest.raises(TargetUnavailable, match="HTTP 404 .*needs PAYMON_RUNBOOK_TOKEN"):
            read_runbook(without)
        with pytest.raises(AuthError, match="HTTP 401"):
            read_runbook(RunbookSettings(url=good.url, token="glpat-not-a-real-token-0000"))
        missing = RunbookSettings(url=good.url.replace("payment-monitoring.md", "nope.md"), token=good.token)
        with pytest.raises(TargetUnavailable, match="HTTP 404"):
            read_runbook(missing)
        answer = httpx.get(good.url.replace("ref=main", "ref=other"),
                           headers={"Authorization": f"Bearer {good.token.get_secret_value()}"})
        assert answer.status_code == 404 and answer.json() == {"message": "404 File Not Found"}


def test_a_web_page_or_a_redirect_is_could_not_check_naming_the_fix():
    from paymon.clients.runbook import _document

    settings = RunbookSettings(url="https://gitlab.example/x/-/blob/main/runbook.md")
    html = httpx.Response(200, headers={"content-type": "text/html; charset=utf-8"}, text="<html>")
    with pytest.raises(TargetUnavailable, match="answered HTML .*raw-file API"):
        _document(html, settings, [])
    # GitLab sends a private project's web pages to sign-in
    redirect = httpx.Response(302, headers={"location": "https://gitlab.example/users/sign_in"})
    with pytest.raises(TargetUnavailable, match="redirected .*sign_in"):
        _document(redirect, settings, [])


def test_a_repository_file_is_read_for_every_target(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "runbook.md").write_text("# R\nLast reviewed: 2026-12-01\n")
    spec = RunbookSpec(url="https://gitlab.example/r", path="docs/runbook.md")
    for target in (Target("live", environ={}), Target("sandbox", sandbox={"base_url": "http://x"})):
        document = read_runbook(target.runbook(spec, str(tmp_path)))
        assert parse_runbook(document.text).last_reviewed.isoformat() == "2026-12-01"
    with pytest.raises(TargetUnavailable, match="cannot read it"):
        read_runbook(Target("live", environ={}).runbook(RunbookSpec(url="https://g.example/r", path="nope.md"),
                                                         str(tmp_path)))


@pytest.mark.parametrize("bad, message", [
    ({"path": "/etc/passwd"}, "inside the repository"),
    ({"path": "../x.md"}, "inside the repository"),
    ({"source": "file:///etc/passwd"}, "http(s) URL"),
    ({"source": "https://g.example/raw", "path": "x.md"}, "not both"),
    ({"procedures": ["payment-failure-spike"]}, "anchor"),
])
def test_bad_runbook_settings_are_one_clear_error(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunbookSpec(url="https://gitlab.example/r", **bad)


def test_the_live_token_is_sent_and_never_shown():
    settings = Target("live", environ={"PAYMON_RUNBOOK_TOKEN": "glpat-abcdefghijklmnop"}).runbook(SPEC.runbook)
    assert settings.token.get_secret_value() == "glpat-abcdefghijklmnop"
    assert "glpat" not in repr(settings) and "glpat" not in settings.where
    assert "glpat-abcdefghijklmnop" in Target("live", environ={"PAYMON_RUNBOOK_TOKEN": "glpat-abcdefghijklmnop"}).secrets()


# --- §7 "Update runbook as new issues discovered": firings since a section last changed ----------

def _unlearnt(sections_changed_days_ago: float):
    from paymon.cli.review import open_review_session
    from paymon.clients.runbook import read_runbook_history
    from paymon.findings.incident_log import firing_times
    from paymon.findings.runbook import update_findings
    from paymon.findings.snapshot import SentrySnapshot

    world = golden_world("workflow")
    file = world["gitlab"]["projects"][0]["files"]["docs/payment-monitoring.md"]
    file["sections_changed_days_ago"] = {a: sections_changed_days_ago for a in file["sections_changed_days_ago"]}
    with open_review_session("sandbox", SPEC, history_days=14, world=world) as session:
        settings = session.target.runbook(SPEC.runbook)
        runbook = parse_runbook(read_runbook(settings).text)
        stamps = read_runbook_history(settings)
        snapshot = SentrySnapshot(session.sentry, SPEC)
        firings = {a.name: firing_times(snapshot.alert(a.name), session.sentry, snapshot.project["id"],
                                        session.now - 90 * 86400, session.now) for a in SPEC.alerts}
        return update_findings(SPEC, runbook, stamps, firings, SPEC.runbook.update_after_firings), firings


def test_alerts_that_fired_after_their_section_changed_are_findings():
    (lines, listed), firings = _unlearnt(sections_changed_days_ago=40)
    named = {u.alert for u in listed}
    # the generated week: a checkout burst, a webhook outage, replayed signatures, a discrepancy
    assert {"Webhook Processing Failure", "Webhook Signature Verification Failure Spike",
            "Reconciliation Discrepancy Detected"} <= named, (lines, firings)
    assert any(line.startswith("Webhook Processing Failure: fired") and "add what was learnt" in line for line in lines)
    assert firings["Test Mode Detected in Production"] is None  # an issue alert: no incident log to judge


def test_sections_changed_after_the_firings_leave_nothing_to_learn():
    (lines, listed), firings = _unlearnt(sections_changed_days_ago=0.2)
    assert lines == [] and listed == []
    assert any(firings[name] for name in firings if firings[name] is not None)  # the alerts did fire


def test_blame_ranges_follow_the_sections():
    from paymon.clients.runbook import read_runbook_history

    from paymon.findings.runbook import section_changed_at

    with SandboxServer(golden_world("workflow"), clock=SandboxClock(start=NEW_YEAR)) as server:
        settings = _sandbox_runbook(server)
        text = read_runbook(settings).text
        stamps = read_runbook_history(settings)
    runbook = parse_runbook(text)
    assert len(stamps) == len(text.splitlines())  # one stamp per line, in file order
    assert round((NEW_YEAR - section_changed_at(runbook.sections["payment-failure-spike"], stamps)) / 86400) == 1
    assert round((NEW_YEAR - section_changed_at(runbook.sections["escalation"], stamps)) / 86400) == 120


def test_a_repository_files_history_comes_from_git_blame(tmp_path):
    import subprocess

    from paymon.clients.runbook import read_runbook_history

    run = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "runbook.md").write_text("# R\n## A\n1. step\n")
    run("add", "runbook.md")
    run("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "r",
        "--date", "2026-11-01T00:00:00Z")
    stamps = read_runbook_history(RunbookSettings(path=str(tmp_path / "runbook.md")))
    assert len(stamps) == 3 and len(set(stamps)) == 1


def test_the_weekly_page_lists_alerts_the_runbook_has_not_learnt_from():
    from paymon.findings.runbook import UnlearntAlert
    from paymon.reporting.weekly import render_weekly

    seen = UnlearntAlert("Webhook Processing Failure", "#webhook-processing-failure", NEW_YEAR - 40 * 86400,
                         [NEW_YEAR - 3 * 86400, NEW_YEAR - 2 * 86400])
    older = {**seen.measurement(), "firings": 1}
    runs = [{"started": NEW_YEAR - 5 * 86400, "exit_code": 0, "measurements": [older]},
            {"started": NEW_YEAR - 86400, "exit_code": 0, "measurements": [seen.measurement()]}]
    page = render_weekly(runs, now=NEW_YEAR)
    section = page.split("Alerts that fired since their runbook section last changed</h2>", 1)[1]
    assert "<td>Webhook Processing Failure</td><td>#webhook-processing-failure</td>" in section
    assert "<td>2</td>" in section  # the latest review's count, not the older one's
    empty = render_weekly([{"started": NEW_YEAR - 86400, "exit_code": 0, "measurements": []}], now=NEW_YEAR)
    assert "No alert fired since its runbook section last changed" in empty
