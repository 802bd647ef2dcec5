"""The pages people read, rendered in headless Chromium (Debian's `chromium`): the weekly review
page and, where Node.js can run Allure 3, the HTML report, both built from a real sandbox run.

Chromium is required: without it these tests fail, naming the package, because an unrendered
page is exactly what they exist to catch. Only the Allure build may be unavailable (no Node.js, or
no network for npx to fetch allure@3): that test is skipped, saying so.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from paymon.reporting.allure_report import ReportFailed, ReportPaths, ReportToolMissing, build_report, record_run
from paymon.reporting.charts import PNG_SIGNATURE
from paymon.reporting.weekly import write_weekly

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHECKS = ["checks/test_payment_endpoints.py", "checks/test_delivery.py"]
DAY = 24 * 3600


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: the report pages cannot be rendered. "
                    "Install Debian's package: apt-get install -y chromium", pytrace=False)
    return path


def _chromium(binary: str, url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    # --virtual-time-budget lets a page's scripts (Allure's) finish loading before the dump.
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                           *args, url], capture_output=True, text=True, timeout=120)


def dump_dom(binary: str, url: str, tmp_path: Path) -> str:
    done = _chromium(binary, url, tmp_path, "--dump-dom")
    assert done.returncode == 0 and done.stdout.strip(), done.stderr[-2000:]
    return done.stdout


def screenshot(binary: str, url: str, tmp_path: Path, png: Path, height: int = 2000) -> bytes:
    done = _chromium(binary, url, tmp_path, f"--screenshot={png}", f"--window-size=1280,{height}")
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    return png.read_bytes()


@pytest.fixture(scope="module")
def sandbox_run(tmp_path_factory) -> Path:
    """The p95 and delivery checks against the sandbox (what the weekly trends plot), as users run
    them; returns the reports directory (allure-results/, junit.xml, verdict.json)."""
    import os
    import sys

    from tests.conftest import REPO

    reports = tmp_path_factory.mktemp("reports")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "PAYMON_"))}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
                           f"--junitxml={reports / 'junit.xml'}", f"--alluredir={reports / 'allure-results'}",
                           *CHECKS], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return reports


def _week_of_runs(reports: Path) -> Path:
    """runs.jsonl: the real run, preceded by six earlier days (the same run, moved back in time,
    one of them late on Slack and failing), so the trend plots have a week to draw."""
    run = json.loads((reports / "verdict.json").read_text())
    paths = ReportPaths.under(reports)
    for days_back in range(6, 0, -1):
        earlier = json.loads(json.dumps(run))
        earlier["started"] -= days_back * DAY
        if days_back == 3:
            earlier["exit_code"] = 1
            earlier["failures_by_category"] = {"Delivery failure": 1}
            for c in earlier["criteria"]:
                if c["criterion"] == "Test alerts delivered to Slack within 1 minute":
                    c.update(status="fail", reason="Slack delivery: reached #payments-alerts after 75.0s")
            for m in earlier["measurements"]:
                if m["kind"] == "delivery" and m["route"] == "Slack":
                    m["seconds"] = 75.0
        paths.runs.parent.mkdir(parents=True, exist_ok=True)
        with paths.runs.open("a") as out:
            out.write(json.dumps(earlier) + "\n")
    assert record_run(paths)
    return paths.runs


def test_weekly_page_renders_with_every_trend_plot(chromium, sandbox_run, tmp_path):
    runs = _week_of_runs(sandbox_run)
    page = write_weekly(runs, tmp_path / "weekly.html")
    url = page.resolve().as_uri()

    dom = dump_dom(chromium, url, tmp_path)
    for heading in ("Payment monitoring: weekly review", "Delivery times against their deadlines",
                    "p95 per endpoint against budgets", "Failures by category", "Alerts that fired for real"):
        assert f">{heading}</h" in dom, heading
    assert "7 runs: 6 pass, 1 fail" in dom
    # The tables give the numbers the plots show: routes with their deadlines, each endpoint.
    assert re.search(r"<td>Slack</td><td>7</td>.*?<td>60 s</td><td>1</td>", dom)
    assert re.search(r"<td>PagerDuty</td><td>7</td>.*?<td>300 s</td><td>0</td>", dom)
    for endpoint in ("/api/checkout/pro", "/api/checkout/payg", "/api/webhooks/lemonsqueezy",
                     "/api/subscription/payg/create"):
        assert f"<td>{endpoint}</td><td>7</td>" in dom
    assert "<td>Delivery failure</td><td>1</td>" in dom
    assert "reached #payments-alerts after 75.0s (1x)" in dom
    # Three plots (delivery, p95, categories), each a PNG Chromium could decode: a broken image
    # would still be an <img>, so the data itself is checked too.
    images = re.findall(r'<img class="plot" alt="([^"]+)" src="data:image/png;base64,([^"]+)"', dom)
    assert [alt for alt, _ in images] == ["delivery times against their deadlines",
                                          "p95 per endpoint against its budgets", "failures by category per day"]
    import base64

    assert all(base64.b64decode(data).startswith(PNG_SIGNATURE) for _, data in images)

    shot = screenshot(chromium, url, tmp_path, tmp_path / "weekly.png", height=2600)
    assert shot.startswith(PNG_SIGNATURE)
    # The plots are on screen: the budget/deadline red and the p95 blue appear in the rendering.
    from matplotlib.image import imread

    pixels = imread(tmp_path / "weekly.png")[..., :3]
    colours = {tuple(round(float(c) * 255) for c in p) for p in pixels[::4, ::4].reshape(-1, 3)}
    assert (0xC6, 0x28, 0x28) in colours and (0x15, 0x65, 0xC0) in colours


def test_allure_report_renders(chromium, sandbox_run, tmp_path):
    paths = ReportPaths.under(sandbox_run, output=tmp_path / "allure-report")
    try:
        index = build_report(paths)
    except ReportToolMissing as exc:
        pytest.skip(f"no Allure 3 here: {exc}")
    except ReportFailed as exc:
        pytest.skip(f"Allure 3 could not be run (npx needs the npm registry the first time): {exc}")
    # The report loads its data with fetch(), which Chromium refuses over file://: serve it, as
    # GitLab Pages does.
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        dom = dump_dom(chromium, url, tmp_path)
        shot = screenshot(chromium, url, tmp_path, tmp_path / "allure.png", height=1000)
    finally:
        server.shutdown()
    assert "paymon: payment monitoring" in dom
    assert "towerofbabel" in dom  # environment.properties, shown as the report's metadata
    checks = len(list(paths.results.glob("*-result.json")))
    assert re.search(rf"Passed.{{0,400}}?\b{checks}\b", dom, re.S), f"the {checks} checks are not counted as passed"
    assert shot.startswith(PNG_SIGNATURE)
    # The PNG attachments (a histogram per p95 check, a timeline per delivery check) went with it.
    attachments = list((index.parent / "data" / "attachments").glob("*.png"))
    assert len(attachments) == len(list(paths.results.glob("*-attachment.png"))) >= 6
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in attachments)
