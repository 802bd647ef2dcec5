"""What a run waits for is shown (#12 item 7): the watchers report on the clock they wait on, the
pytest side draws a plain line every LINE_EVERY_S of that clock in a log and one status line on a
terminal, and neither ever splices into pytest's own lines. Suite runs use a world whose Slack and
PagerDuty deliveries take 45 s and 100 s of sandbox time (the waits move the sandbox clock, so they
cost no wall time), in one process and under `-n 2`; the terminal form is checked on the bytes a
pseudo-terminal receives, replayed on a small screen model (cursor moves, line erase)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _pytest._io.terminalwriter import TerminalWriter

from fixtures.progress import LINE_EVERY_S, WaitDisplay, WaitReporter, clock_text, describe
from paymon.clients.slack import SentryApp
from paymon.delivery.endtoend import Delivery, SlackChannelWatcher, WaitProgress
from paymon.sandbox.world import golden_world

from tests.conftest import REPO

SLACK_DELAY_S, PAGE_DELAY_S = 45.0, 100.0
WAITING = re.compile(r"paymon: waiting for (Slack|PagerDuty|the drill): (.+) (\d+):(\d\d) / (\d+):(\d\d)"
                     r"( \(past the deadline, still looking: late or missing\?\))?")
DONE = re.compile(r"paymon: (done|stopped) waiting for (Slack|PagerDuty|the drill) after (\d+):(\d\d) "
                  r"\(deadline (\d+):(\d\d)\)(: .+ not seen)?")
PYTEST_RESULTS = re.compile(r"(checks/\S+ )?[.FEsxX]*( +\[ *\d+%\])?")


# --- the watchers report on their own clock -----------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class SlackHistory:
    """A channel where `marker` is posted at `at` (its ts), visible from then on."""

    def __init__(self, clock: Clock, marker: str, at: float | None):
        self.clock, self.marker, self.at = clock, marker, at

    def history(self, channel_id, oldest):
        if self.at is None or self.clock() < self.at:
            return []
        return [{"ts": f"{self.at:.6f}", "text": f"{self.marker} synthetic delivery check", "app_id": "A_SENTRY"}]


@pytest.mark.parametrize("arrives_after", [30.0, None], ids=["arrives", "never"])
def test_slack_watcher_reports_what_it_waits_for_on_its_clock(arrives_after):
    clock, reports = Clock(), []
    fired = clock() - 2.0
    reader = SlackHistory(clock, "PAYMON-TEST-X-SLACK", None if arrives_after is None else fired + arrives_after)
    watcher = SlackChannelWatcher(reader, "C1", since=fired, clock=clock, sleep=clock.sleep, progress=reports.append,
                                  sentry=SentryApp(app_id="A_SENTRY"))
    [delivery] = watcher.wait_for([Delivery("PAYMON-TEST-X-SLACK", fired, 60.0)])

    assert reports[0] == WaitProgress("Slack", "PAYMON-TEST-X-SLACK", 2.0, 60.0)
    waiting, [last] = reports[:-1], reports[-1:]
    assert all(not r.done and r.waiting_for == "PAYMON-TEST-X-SLACK" for r in waiting)
    assert [r.elapsed_s for r in waiting] == sorted(r.elapsed_s for r in waiting)
    assert last.done and last.elapsed_s == clock() - fired  # the fake clock's, to the second
    if arrives_after is None:
        assert delivery.arrived_at is None
        assert last.waiting_for == "PAYMON-TEST-X-SLACK" and last.elapsed_s > 60.0
    else:
        assert delivery.seconds == arrives_after
        assert last.waiting_for == "" and arrives_after <= last.elapsed_s < arrives_after + 10


# --- which reports become lines: the watcher's clock decides -------------------------------------------


def test_a_plain_line_when_a_wait_starts_then_every_interval_of_the_watchers_clock_then_at_its_end():
    records = []
    reporter = WaitReporter(records.append, ticking=False, wall=lambda: 0.0)  # the wall clock stands still
    elapsed = [0.0, 1.0, 2.5, 4.75, 8.1, 13.2, 20.7, 30.9, 40.0, 45.0]
    for seconds in elapsed:
        reporter(WaitProgress("PagerDuty", "M", seconds, 300.0))
    reporter(WaitProgress("PagerDuty", "", 47.0, 300.0, done=True))

    lines = [r["elapsed_s"] for r in records if r["line"]]
    assert lines == [0.0, 20.7, 45.0, 47.0]  # 40.0 is only 19.3 s after the last line
    assert all(later - earlier >= LINE_EVERY_S for earlier, later in zip(lines[:-2], lines[1:-1]))
    # Between lines, status reports for a terminal are thinned on the wall clock (still here: none).
    assert [r["elapsed_s"] for r in records if not r["line"]] == []


def test_a_report_that_cannot_be_shown_never_breaks_the_wait():
    def broken(record):
        raise OSError("terminal gone")

    WaitReporter(broken, ticking=True)(WaitProgress("Slack", "M", 1.0, 60.0))


def test_how_a_wait_reads():
    record = {"service": "PagerDuty", "waiting_for": "PAYMON-TEST-AB12-PAGE", "elapsed_s": 130.4,
              "deadline_s": 300.0, "done": False, "ticking": True, "at": 50.0}
    assert describe(record) == "waiting for PagerDuty: PAYMON-TEST-AB12-PAGE 2:10 / 5:00"
    assert describe(record, now=55.0) == "waiting for PagerDuty: PAYMON-TEST-AB12-PAGE 2:15 / 5:00"  # live ticks
    assert describe({**record, "ticking": False}, now=55.0).endswith("2:10 / 5:00")  # the sandbox clock jumps
    assert "past the deadline" in describe({**record, "elapsed_s": 310.0})
    assert describe({**record, "done": True, "waiting_for": ""}) == \
        "done waiting for PagerDuty after 2:10 (deadline 5:00)"
    assert describe({**record, "done": True, "elapsed_s": 330}) == \
        "stopped waiting for PagerDuty after 5:30 (deadline 5:00): PAYMON-TEST-AB12-PAGE not seen"
    assert clock_text(3725) == "1:02:05"


# --- drawing: a screen model replays what the terminal receives ---------------------------------------


def screen(data: str) -> list[str]:
    """The text a terminal shows after `data`: printable characters, CR, LF, cursor up/down/forward
    (CSI A/B/C), erase line (CSI K, 2K); colours and other sequences are ignored."""
    rows: list[list[str]] = [[]]
    row = col = 0
    tokens = re.finditer(r"\x1b\[(\d*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.|(.)", data, re.S)
    for token in tokens:
        number, command, char = token.group(1), token.group(2), token.group(3)
        if char == "\n":
            row, col = row + 1, 0
        elif char == "\r":
            col = 0
        elif char is not None:
            line = rows[row]
            line.extend(" " * (col - len(line) + 1))
            line[col], col = char, col + 1
        elif command == "A":
            row = max(row - int(number or 1), 0)
        elif command == "B":
            row += int(number or 1)
        elif command == "C":
            col += int(number or 1)
        elif command == "K":
            rows[row][:] = [] if number == "2" else rows[row][:col]
        while len(rows) <= row:
            rows.append([])
    shown = ["".join(r).rstrip() for r in rows]
    while shown and not shown[-1]:
        shown.pop()
    return shown


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Reporter:
    """The parts of pytest's TerminalReporter the display uses."""

    def __init__(self, file, currentfspath=None):
        self._tw = TerminalWriter(file)
        self._tw.fullwidth = 100
        self.currentfspath, self.startpath = currentfspath, Path(REPO)


def record(service="PagerDuty", waiting_for="PAYMON-TEST-AB12-PAGE", elapsed=130.0, done=False, line=True):
    return {"service": service, "waiting_for": waiting_for, "elapsed_s": elapsed, "deadline_s": 300.0,
            "done": done, "line": line, "ticking": False, "at": 0.0, "source": ""}


def test_on_a_terminal_one_status_line_under_pytests_line_erased_before_pytest_writes():
    out = TTY()
    reporter = Reporter(out)
    display = WaitDisplay(reporter, tty=True)
    tw = reporter._tw
    tw.write("checks/test_delivery.py ")
    tw.write(".", green=True)
    display.show(record(elapsed=10.0))
    display.show(record(elapsed=130.0))
    assert screen(out.getvalue()) == ["checks/test_delivery.py .",
                                      "paymon: waiting for PagerDuty: PAYMON-TEST-AB12-PAGE 2:10 / 5:00"]
    tw.write(".")  # pytest's next result lands on its own line, after its own dot
    assert screen(out.getvalue()) == ["checks/test_delivery.py .."]
    display.show(record(elapsed=150.0))
    tw.line()
    tw.line("=== paymon verdict ===")
    display.show(record(elapsed=170.0))
    display.finish()
    assert screen(out.getvalue()) == ["checks/test_delivery.py ..", "=== paymon verdict ==="]
    display.close()


def test_live_the_status_line_ticks_between_the_watchers_polls():
    out, now = TTY(), [100.0]
    reporter = Reporter(out)
    display = WaitDisplay(reporter, tty=True, wall=lambda: now[0], tick_in_thread=False)
    reporter._tw.write("checks/test_delivery.py ")
    display.show({**record(elapsed=130.0), "ticking": True, "at": 100.0})
    now[0] = 107.0
    display.pump()  # what the display's thread does each REDRAW_EVERY_S
    assert screen(out.getvalue())[1] == "paymon: waiting for PagerDuty: PAYMON-TEST-AB12-PAGE 2:17 / 5:00"
    written = len(out.getvalue())
    display.pump()  # nothing changed: nothing rewritten
    assert len(out.getvalue()) == written
    display.close()
    assert screen(out.getvalue()) == ["checks/test_delivery.py"]


@pytest.mark.parametrize("env, tty", [({}, True), ({"TERM": "dumb"}, False), ({"CI": "true"}, False)],
                         ids=["terminal", "dumb terminal", "CI job"])
def test_a_status_line_only_where_the_cursor_can_move(monkeypatch, env, tty):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reporter = Reporter(TTY())
    reporter.isatty = lambda: True
    display = WaitDisplay(reporter)
    assert display.tty is tty
    display.close()


def test_the_status_line_is_scrubbed_though_it_goes_straight_to_the_terminal(monkeypatch):
    monkeypatch.setenv("PAGERDUTY_API_TOKEN", "u+Abcdefghijklmnopqrst")
    out = TTY()
    display = WaitDisplay(Reporter(out), tty=True)
    display.show(record(waiting_for="PAYMON-TEST-AB12-PAGE u+Abcdefghijklmnopqrst"))
    assert "u+Abcdefghijklmnopqrst" not in out.getvalue() and "[redacted]" in out.getvalue()
    display.close()


def test_in_a_log_plain_lines_between_pytests_never_inside_them():
    out = io.StringIO()
    reporter = Reporter(out, currentfspath=Path(REPO) / "checks" / "test_delivery.py")
    display = WaitDisplay(reporter, tty=False)
    tw = reporter._tw
    tw.write("checks/test_delivery.py ")
    tw.write(".")
    display.show(record(elapsed=10.0))
    display.show(record(elapsed=20.0, line=False))  # a terminal's status: not a line in a log
    display.show(record(elapsed=30.0))
    tw.write(".")
    tw.line()
    display.show(record(done=True, waiting_for="", elapsed=40.0))
    tw.line()
    tw.line("=== paymon verdict ===")
    assert out.getvalue().splitlines() == [
        "checks/test_delivery.py .",
        "paymon: waiting for PagerDuty: PAYMON-TEST-AB12-PAGE 0:10 / 5:00",
        "paymon: waiting for PagerDuty: PAYMON-TEST-AB12-PAGE 0:30 / 5:00",
        "checks/test_delivery.py .",  # pytest goes on with its file's line: its name comes back first
        "paymon: done waiting for PagerDuty after 0:40 (deadline 5:00)",
        "=== paymon verdict ===",
    ]
    display.close()


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "log"])
def test_under_xdist_the_controller_draws_what_workers_report(tty):
    from fixtures.progress import _Appender

    out = TTY() if tty else io.StringIO()
    reporter = Reporter(out)
    display = WaitDisplay(reporter, tty=tty)
    path = display.listen(read_in_thread=False)  # the test reads, not a thread: every step is exact
    worker = WaitReporter(_Appender(path), ticking=False, source="gw0", wall=lambda: 0.0)
    tw = reporter._tw
    tw.write(".")
    worker(WaitProgress("PagerDuty", "PAYMON-TEST-AB12-PAGE", 5.0, 300.0))
    worker(WaitProgress("PagerDuty", "PAYMON-TEST-AB12-PAGE", 30.0, 300.0))
    display.pump()
    if tty:
        assert screen(out.getvalue()) == [".", "paymon: waiting for PagerDuty: PAYMON-TEST-AB12-PAGE 0:30 / 5:00"]
    tw.write(".")
    worker(WaitProgress("PagerDuty", "", 41.0, 300.0, done=True))
    display.finish()
    tw.line()
    expected = [".."] if tty else [
        ".",
        "paymon: waiting for PagerDuty: PAYMON-TEST-AB12-PAGE 0:05 / 5:00",
        "paymon: waiting for PagerDuty: PAYMON-TEST-AB12-PAGE 0:30 / 5:00",
        ".",
        "paymon: done waiting for PagerDuty after 0:41 (deadline 5:00)",
        "",
    ]
    assert (screen(out.getvalue()) if tty else out.getvalue().splitlines()) == expected
    display.close()
    assert not Path(path).exists()


# --- whole runs ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_world() -> dict:
    """The golden world, with Sentry's Slack posts taking 45 s and its pages 100 s (sandbox time)."""
    world = golden_world("workflow")
    world["sentry"].setdefault("knobs", {}).setdefault("delivery_delay", {}).update(
        slack=SLACK_DELAY_S, pagerduty=PAGE_DELAY_S)
    return world


def minutes(match: re.Match, group: int) -> float:
    return int(match.group(group)) * 60 + int(match.group(group + 1))


def check_output(output: str, verbose: bool = False) -> list[str]:
    """Every line of ours is whole (nothing of pytest's inside it), and every result line of pytest's
    holds nothing of ours; returns our lines."""
    ours = [line for line in output.splitlines() if "paymon: " in line and "waiting for" in line]
    for line in ours:
        assert WAITING.fullmatch(line) or DONE.fullmatch(line), f"spliced: {line!r}"
    lines = output.splitlines()
    # The results come before pytest's first section after them (warnings, failures, summary).
    lines = lines[:next((i for i, line in enumerate(lines)
                         if re.match(r"[=_-]{3,} (?!test session starts)", line)), len(lines))]
    if verbose:  # `checks/test_delivery.py::test_slack_delivery PASSED   [ 50%]`, its name alone before our lines
        results = [line for line in lines if line.startswith("checks/")]
        pattern = re.compile(r"checks/\S+ ((PASSED|FAILED)( +\[ *\d+%\])?)?")
    else:
        results = [line for line in lines if re.match(r"checks/|[.FEsxX]+(\s|$)", line)]
        pattern = PYTEST_RESULTS
    assert results and all(pattern.fullmatch(line) for line in results), results
    return ours


@pytest.mark.parametrize("args", [[], ["-n", "2"], ["--capture=no", "-vv"]],
                         ids=["one process", "-n 2", "--capture=no -v"])
def test_a_run_shows_its_waits_on_the_sandbox_clock(run_suite, slow_world, args):
    run = run_suite("checks/test_delivery.py", "--no-drill", *args, world=slow_world)  # run_suite passes -q
    assert run.returncode == 0, run.output[-3000:]
    assert run.passed == {"test_slack_delivery", "test_pagerduty_delivery"}
    ours = check_output(run.output, verbose="-vv" in args)

    slack = [m for m in map(WAITING.fullmatch, ours) if m and m.group(1) == "Slack"]
    pages = [m for m in map(WAITING.fullmatch, ours) if m and m.group(1) == "PagerDuty"]
    assert slack and all(re.fullmatch(r"PAYMON-TEST-\w+-SLACK", m.group(2)) for m in slack)
    assert all(minutes(m, 5) == 60 for m in slack) and all(minutes(m, 5) == 300 for m in pages)
    assert pages[0].group(2) == slack[0].group(2).removesuffix("-SLACK") + "-PAGE"
    # A line at most every 20 s of the sandbox clock (shown to the second) while the page takes 100 s
    # of it: the run itself takes a few seconds. (Which of the two checks waits first is xdist's choice.)
    elapsed = [minutes(m, 3) for m in pages]
    assert len(pages) >= 3 and all(later - earlier >= 19 for earlier, later in zip(elapsed, elapsed[1:])), ours
    done = {m.group(2): m for m in map(DONE.fullmatch, ours) if m}
    assert set(done) == {"Slack", "PagerDuty"} and all(m.group(1) == "done" for m in done.values())
    assert minutes(done["Slack"], 3) >= SLACK_DELAY_S, ours
    assert PAGE_DELAY_S <= minutes(done["PagerDuty"], 3) <= 300


def test_a_page_that_never_comes_is_shown_to_the_end(run_suite, slow_world, tmp_path):
    from tests.conftest import spec_with_deadlines

    short = spec_with_deadlines(tmp_path, slack="60s", pagerduty="60s")  # gives up at 90 s: the page takes 100
    run = run_suite("checks/test_delivery.py", "--no-drill", f"--spec={short}", world=slow_world)
    assert "test_pagerduty_delivery" in run.failed
    ours = check_output(run.output)
    stopped = [m for m in map(DONE.fullmatch, ours) if m and m.group(2) == "PagerDuty"]
    assert len(stopped) == 1 and stopped[0].group(1) == "stopped"
    assert re.fullmatch(r": PAYMON-TEST-\w+-PAGE not seen", stopped[0].group(7))
    assert any("past the deadline" in line for line in ours)
    # Written past pytest's capture, as it happened: not kept for the failed check's report.
    failures = run.output.index("= FAILURES =")
    assert all(run.output.index(line) < failures for line in ours) and len(set(ours)) == len(ours), run.output


def test_the_drill_shows_what_it_reads_back(run_suite):
    run = run_suite("checks/test_drill.py", "-k", "Webhook and Processing")
    assert run.returncode == 0, run.output[-3000:]
    ours = check_output(run.output)
    assert any(re.fullmatch(r"paymon: waiting for the drill: Webhook Processing Failure: slack #payments-alerts, "
                            r"pagerduty .+ \d+:\d\d / \d+:\d\d", line) for line in ours), ours
    # Once the page is seen, the drill waits for the on-call's acknowledgement, on its own deadline
    # (the incident + delivery.pagerduty.acknowledge_within), not the page's 5:00.
    acknowledging = [m for m in map(WAITING.fullmatch, ours) if m and m.group(2).endswith("(acknowledgement)")]
    assert acknowledging and all(minutes(m, 5) > 300 for m in acknowledging), ours


def test_without_a_terminal_reporter_nothing_is_shown_and_nothing_breaks(slow_world, tmp_path):
    from tests import forked_pytest

    world = tmp_path / "world.json"
    world.write_text(json.dumps(slow_world))
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "PAYMON_"))}
    run = forked_pytest.run(["-p", "no:cacheprovider", "-o", "addopts=", "-p", "no:terminal", f"--junitxml={junit}",
                             f"--sandbox-world={world}", "--no-drill", "checks/test_delivery.py"],
                            cwd=REPO, env=env, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:]
    assert junit.read_text().count("<testcase") == 2 and "<failure" not in junit.read_text()
    assert "waiting for" not in run.stdout


def test_on_a_pseudo_terminal_the_status_line_leaves_nothing_behind(slow_world, tmp_path):
    """A real terminal (one process: the status line is drawn while the checks wait; under xdist the
    same display reads a file, see test_under_xdist_the_controller_draws_what_workers_report)."""
    import pty

    world = tmp_path / "world.json"
    world.write_text(json.dumps(slow_world))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "PAYMON_")) and k != "CI"}
    env.update(TERM="xterm", COLUMNS="100", LINES="40")
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
                             "--junitxml", str(tmp_path / "junit.xml"), f"--sandbox-world={world}", "--no-drill",
                             "checks/test_delivery.py"],
                            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=240) == 0
    raw = b"".join(chunks).decode("utf-8", "replace")
    assert "paymon: waiting for PagerDuty: PAYMON-TEST-" in raw  # drawn while the checks waited, then erased
    shown = screen(raw.replace("\r\n", "\n"))
    assert not [line for line in shown if "paymon: " in line], shown
    assert any(re.fullmatch(r"(checks/test_delivery\.py )?\.\.\s+\[100%\]", line) for line in shown), shown
    assert any(re.fullmatch(r"=+ 2 passed in .+ =+", line) for line in shown), shown
