"""SentryClient, the endpoint readers and SentrySettings against `httpx.MockTransport` (no network,
no real sleeping: time is a fake clock that `sleep` advances)."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from paymon import __version__
from paymon.errors import AuthError, EndpointMissing, ServiceError, SettingsError, TargetUnavailable
from paymon.clients.sentry import api
from paymon.clients.sentry.client import SentryClient, required_scopes
from paymon.config.settings import SentrySettings, redact

TOKEN = "sntryu_" + "a1b2c3d4" * 8
BASE = "https://sentry.io"
EPOCH = 1_790_000_000.0  # the fake wall clock's "now"


class FakeTime:
    """Monotonic and wall clock that only move when the client sleeps; records every wait."""

    def __init__(self):
        self.monotonic = 1000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.monotonic += seconds

    def clock(self) -> float:
        return self.monotonic

    def wall(self) -> float:
        return EPOCH + (self.monotonic - 1000.0)


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def settings():
    return SentrySettings(token=TOKEN, org="acme", project="web", base_url=BASE)


@pytest.fixture
def make_client(settings, fake_time):
    clients = []

    def make(handler, **kwargs) -> SentryClient:
        kwargs.setdefault("deadline", 30.0)
        client = SentryClient(settings, transport=httpx.MockTransport(handler), sleep=fake_time.sleep,
                              clock=fake_time.clock, wall_clock=fake_time.wall, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def link_header(url: str, next_cursor: str | None) -> str:
    """Sentry's Link header: always both entries, `results` says whether a page exists."""
    previous = f'<{url}?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1"'
    if next_cursor is None:
        return previous + f', <{url}?&cursor=0:300:0>; rel="next"; results="false"; cursor="0:300:0"'
    return previous + f', <{url}?&cursor={next_cursor}>; rel="next"; results="true"; cursor="{next_cursor}"'


# --- requests and pagination ---------------------------------------------------------------------

def test_get_sends_bearer_token_user_agent_and_api_path(make_client):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    client = make_client(handler)
    assert client.get(client.org_path("dashboards", 42)) == {"ok": True}
    request = seen[0]
    assert str(request.url) == "https://sentry.io/api/0/organizations/acme/dashboards/42/"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == f"paymon/{__version__}"
    assert client.request_count == 1


def test_paginate_follows_next_while_results_true_across_three_pages(make_client):
    url = f"{BASE}/api/0/organizations/acme/alert-rules/"
    pages = {None: ([{"id": 1}, {"id": 2}], "0:100:0"), "0:100:0": ([{"id": 3}], "0:200:0"),
             "0:200:0": ([{"id": 4}], None)}
    cursors = []

    def handler(request):
        cursor = request.url.params.get("cursor")
        cursors.append(cursor)
        items, next_cursor = pages[cursor]
        return httpx.Response(200, json=items, headers={"Link": link_header(url, next_cursor)})

    client = make_client(handler)
    assert client.paginate(client.org_path("alert-rules")) == [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}]
    assert cursors == [None, "0:100:0", "0:200:0"]
    assert client.request_count == 3


def test_paginate_keeps_params_and_page_size_on_every_page(make_client):
    url = f"{BASE}/api/0/organizations/acme/detectors/"
    seen = []

    def handler(request):
        seen.append(dict(request.url.params))
        last = "cursor" in request.url.params
        return httpx.Response(200, json=[{}], headers={"Link": link_header(url, None if last else "0:5:0")})

    client = make_client(handler, page_size=5)
    assert len(client.paginate(client.org_path("detectors"), {"project": "7"})) == 2
    assert seen == [{"project": "7", "per_page": "5"}, {"project": "7", "per_page": "5", "cursor": "0:5:0"}]


def test_paginate_without_link_header_is_one_page(make_client):
    client = make_client(lambda request: httpx.Response(200, json=[{"id": 1}]))
    assert client.paginate("organizations/acme/teams/") == [{"id": 1}]


def test_paginate_never_sends_the_token_to_a_foreign_next_url(make_client):
    hosts = []

    def handler(request):
        hosts.append(request.url.host)
        if "cursor" in request.url.params:
            return httpx.Response(200, json=[])
        evil = '<https://evil.example/api/0/x/?cursor=0:1:0>; rel="next"; results="true"; cursor="0:1:0"'
        return httpx.Response(200, json=[{}], headers={"Link": evil})

    client = make_client(handler)
    client.paginate("organizations/acme/teams/")
    assert hosts == ["sentry.io", "sentry.io"]


def test_paginate_stops_on_a_repeated_cursor(make_client):
    url = f"{BASE}/api/0/organizations/acme/teams/"
    client = make_client(lambda r: httpx.Response(200, json=[{}], headers={"Link": link_header(url, "0:1:0")}))
    with pytest.raises(ServiceError, match="repeats cursor '0:1:0'"):
        client.paginate("organizations/acme/teams/")


# --- retries, rate limits, deadline --------------------------------------------------------------

def test_429_waits_until_rate_limit_reset_then_succeeds(make_client, fake_time):
    answers = iter([
        httpx.Response(429, headers={"Content-Type": "text/html", "X-Sentry-Rate-Limit-Reset": str(int(EPOCH) + 7),
                                     "X-Sentry-Rate-Limit-Remaining": "0"},
                       content=b'{"detail": "You are attempting to use this endpoint too frequently. Limit is 40 '
                               b'requests in 1 seconds"}'),
        httpx.Response(200, json=[{"id": 1}]),
    ])
    client = make_client(lambda request: next(answers))
    assert client.paginate("organizations/acme/workflows/") == [{"id": 1}]
    assert fake_time.waits == [7.0]
    assert client.request_count == 2


def test_rate_limit_reset_is_read_against_the_servers_date(make_client, fake_time):
    server_now = EPOCH - 3600  # the local clock runs an hour ahead of Sentry's
    answers = iter([
        httpx.Response(429, headers={"Date": email.utils.formatdate(server_now, usegmt=True),
                                     "X-Sentry-Rate-Limit-Reset": str(int(server_now) + 4)}),
        httpx.Response(200, json={}),
    ])
    make_client(lambda request: next(answers)).get("organizations/acme/")
    assert fake_time.waits == [4.0]


def test_retry_after_seconds_and_http_date_are_honoured(make_client, fake_time):
    answers = iter([
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(503, headers={"Retry-After": email.utils.formatdate(EPOCH + 3 + 5, usegmt=True)}),
        httpx.Response(200, json={}),
    ])
    make_client(lambda request: next(answers)).get("organizations/acme/")
    assert fake_time.waits == [3.0, 5.0]


def test_503_twice_then_success_backs_off_with_jitter(make_client, fake_time):
    answers = iter([httpx.Response(503), httpx.Response(503), httpx.Response(200, json={"id": "1"})])
    client = make_client(lambda request: next(answers))
    assert client.get("organizations/acme/dashboards/1/") == {"id": "1"}
    assert len(fake_time.waits) == 2
    assert 0.5 <= fake_time.waits[0] <= 1.0 and 1.0 <= fake_time.waits[1] <= 1.5  # exponential + jitter
    assert client.request_count == 3


def test_5xx_forever_fails_within_the_deadline_naming_the_endpoint(make_client, fake_time):
    client = make_client(lambda request: httpx.Response(502), deadline=10.0)
    with pytest.raises(ServiceError) as caught:
        client.get("organizations/acme/detectors/")
    message = str(caught.value)
    assert "GET /api/0/organizations/acme/detectors/" in message
    assert "502 Bad Gateway" in message and "of a 10s deadline" in message
    assert sum(fake_time.waits) <= 10.0
    assert fake_time.clock() - 1000.0 <= 10.0
    assert f"{client.request_count} attempts" in message and client.request_count >= 3


def test_rate_limit_wait_longer_than_the_deadline_fails_at_once(make_client, fake_time):
    response = httpx.Response(429, headers={"X-Sentry-Rate-Limit-Reset": str(int(EPOCH) + 120)},
                              json={"detail": "You are attempting to use this endpoint too frequently."})
    client = make_client(lambda request: response, deadline=30.0)
    with pytest.raises(ServiceError) as caught:
        client.get("organizations/acme/monitors/")
    assert fake_time.waits == []
    assert client.request_count == 1
    assert str(caught.value) == (
        "Sentry answered 429 You are attempting to use this endpoint too frequently. at "
        "GET /api/0/organizations/acme/monitors/ and asks to wait 120s (X-Sentry-Rate-Limit-Reset), but only "
        "30.0s of the deadline remain (1 attempt in 0.0s of a 30s deadline)"
    )


def test_one_deadline_covers_all_pages_of_a_paginate(make_client, fake_time):
    url = f"{BASE}/api/0/organizations/acme/teams/"

    def handler(request):
        if "cursor" in request.url.params:  # the second page is rate-limited past the budget
            return httpx.Response(429, headers={"Retry-After": "25"})
        fake_time.monotonic += 10  # the first page was slow
        return httpx.Response(200, json=[{}], headers={"Link": link_header(url, "0:1:0")})

    with pytest.raises(ServiceError, match=r"asks to wait 25s \(Retry-After\), but only 20.0s"):
        make_client(handler).paginate("organizations/acme/teams/")


def test_unreachable_host_is_one_line(make_client):
    def refuse(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = make_client(refuse, deadline=2.0)
    with pytest.raises(ServiceError) as caught:
        client.get("organizations/acme/projects/")
    message = str(caught.value)
    assert message.startswith("cannot reach https://sentry.io: connection refused (GET /api/0/organizations/acme/")
    assert "\n" not in message and client.request_count >= 2


def test_read_timeout_is_retried_then_reported(make_client):
    def slow(request):
        raise httpx.ReadTimeout("", request=request)

    with pytest.raises(ServiceError, match="no answer from https://sentry.io to GET .*: read timeout"):
        make_client(slow, deadline=3.0).get("organizations/acme/projects/")


# --- error messages ------------------------------------------------------------------------------

def _raising(make_client, status: int, body: dict | None = None, path: str = "organizations/x/detectors/"):
    client = make_client(lambda request: httpx.Response(status, json=body or {}))
    with pytest.raises(TargetUnavailable) as caught:
        client.get(path)
    return caught.value, client


def test_401_says_the_token_was_rejected(make_client):
    error, client = _raising(make_client, 401, {"detail": "Invalid token"})
    assert type(error) is AuthError
    assert str(error) == ("Sentry rejected the token (401 Invalid token) at "
                          "GET /api/0/organizations/x/detectors/ — check SENTRY_AUTH_TOKEN")
    assert client.request_count == 1  # not retried


def test_403_names_the_endpoint_and_the_scopes_it_needs(make_client):
    error, _ = _raising(make_client, 403, {"detail": "You do not have permission to perform this action."},
                        path="projects/x/web/rules/")
    assert type(error) is AuthError
    assert str(error) == ("the token may not read GET /api/0/projects/x/web/rules/ (403 You do not have "
                          "permission to perform this action.) — it needs the scope alerts:read or project:read")


@pytest.mark.parametrize("status, reason", [(404, "The requested resource does not exist"), (410, "Gone")])
def test_404_and_410_are_endpoint_missing(make_client, status, reason):
    body = {"detail": reason} if status == 404 else None
    error, _ = _raising(make_client, status, body, path="organizations/x/alert-rules/")
    assert type(error) is EndpointMissing and error.status == status
    assert str(error) == f"Sentry has no GET /api/0/organizations/x/alert-rules/ ({status} {reason})"


def test_html_error_body_is_not_quoted(make_client):
    client = make_client(lambda r: httpx.Response(400, html="<html><body>Bad</body></html>"))
    with pytest.raises(TargetUnavailable, match=r"^Sentry refused GET /api/0/x/ \(400 Bad Request\)$"):
        client.get("x/")


def test_redirect_is_reported_not_followed(make_client):
    client = make_client(lambda r: httpx.Response(302, headers={"Location": "https://de.sentry.io/api/0/x/"}))
    with pytest.raises(TargetUnavailable, match="redirected .* to https://de.sentry.io/api/0/x/"):
        client.get("x/")


@pytest.mark.parametrize("path, scopes", [
    ("/api/0/organizations/a/detectors/12/", ("alerts:read", "org:read")),
    ("organizations/a/monitors/", ("alerts:read", "org:read")),
    ("organizations/a/monitors/nightly/checkins/", ("alerts:read", "project:read")),
    ("organizations/a/members/", ("member:read",)),
    ("organizations/a/issues/", ("event:read",)),
    ("projects/a/b/keys/", ("project:read",)),
])
def test_required_scopes_follow_the_endpoint_map(path, scopes):
    assert required_scopes(path) == scopes


def test_token_never_appears_in_errors_settings_or_client(make_client, settings):
    echo = {"detail": f"Invalid token {TOKEN}"}  # even if a server echoes it back
    error, client = _raising(make_client, 401, echo)
    for text in (str(error), repr(error), str(settings), repr(settings), repr(client), str(settings.token)):
        assert TOKEN not in text
    assert "[redacted]" in str(error)


# --- legacy endpoints and readers ----------------------------------------------------------------

def test_legacy_alert_endpoints_answer_none_when_gone(make_client):
    client = make_client(lambda r: httpx.Response(404, json={"detail": "The requested resource does not exist"}))
    assert api.list_issue_rules(client, "web") is None
    assert api.list_metric_alert_rules(client) is None


def test_legacy_alert_endpoints_still_fail_on_auth_errors(make_client):
    client = make_client(lambda r: httpx.Response(403, json={}))
    with pytest.raises(AuthError):
        api.list_metric_alert_rules(client)


def test_find_dashboard_matches_title_skipping_the_prebuilt_entry(make_client):
    def handler(request):
        if request.url.path.endswith("/dashboards/"):
            return httpx.Response(200, json=[{"id": "default-overview", "title": "General"},
                                             {"id": "11", "title": "Other"}, {"id": "12", "title": "Payment Monitoring"}])
        assert request.url.path == "/api/0/organizations/acme/dashboards/12/"
        return httpx.Response(200, json={"id": "12", "title": "Payment Monitoring", "widgets": []})

    client = make_client(handler)
    assert api.find_dashboard(client, "Payment Monitoring")["id"] == "12"
    assert api.find_dashboard(client, "Nope") is None


def test_project_lookup_and_detector_filter(make_client):
    seen = []

    def handler(request):
        seen.append((request.url.path, dict(request.url.params)))
        if request.url.path.endswith("/projects/"):
            return httpx.Response(200, json=[{"id": "4507", "slug": "web"}])
        return httpx.Response(200, json=[])

    client = make_client(handler)
    assert api.project_id(client, "web") == "4507"
    api.list_detectors(client, "4507")
    assert seen[-1] == ("/api/0/organizations/acme/detectors/", {"project": "4507"})
    with pytest.raises(EndpointMissing, match="no project 'mobile' visible to the token \\(projects: web\\)"):
        api.get_project(client, "mobile")


def test_missing_monitor_is_none(make_client):
    client = make_client(lambda r: httpx.Response(404, json={"detail": "Not found"}))
    assert api.get_monitor(client, "reconciliation-daily") is None


# --- settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    (None, "https://sentry.io"),
    ("https://us.sentry.io", "https://us.sentry.io"),
    ("https://de.sentry.io/", "https://de.sentry.io"),
    ("https://sentry.example.com/api/0/", "https://sentry.example.com"),
    ("http://127.0.0.1:9000/sentry/api/0", "http://127.0.0.1:9000/sentry"),
])
def test_settings_from_env_normalise_the_base_url(given, expected):
    environ = {"SENTRY_AUTH_TOKEN": TOKEN, "SENTRY_ORG": "acme", "SENTRY_PROJECT": "web"}
    if given is not None:
        environ["SENTRY_BASE_URL"] = given
    settings = SentrySettings.from_env(environ)
    assert settings.base_url == expected
    assert settings.api_url == expected + "/api/0/"
    assert (settings.org, settings.project, settings.token.get_secret_value()) == ("acme", "web", TOKEN)


def test_client_uses_a_self_hosted_base_url(fake_time):
    seen = []
    settings = SentrySettings.from_env({"SENTRY_AUTH_TOKEN": TOKEN, "SENTRY_BASE_URL": "https://errors.corp/api/0"},
                                       org="acme", project="web")
    transport = httpx.MockTransport(lambda r: seen.append(str(r.url)) or httpx.Response(200, json=[]))
    with SentryClient(settings, transport=transport) as client:
        client.paginate(client.project_path("rules"))
    assert seen == ["https://errors.corp/api/0/projects/acme/web/rules/"]


def test_monitoring_yaml_fills_in_org_and_project_only_when_env_is_unset():
    from_yaml = SentrySettings.from_env({"SENTRY_AUTH_TOKEN": TOKEN}, org="towerofbabel", project="tob-web")
    assert (from_yaml.org, from_yaml.project) == ("towerofbabel", "tob-web")
    env_wins = SentrySettings.from_env({"SENTRY_AUTH_TOKEN": TOKEN, "SENTRY_ORG": "other"}, org="towerofbabel",
                                       project="tob-web")
    assert env_wins.org == "other"


@pytest.mark.parametrize("environ", [{}, {"SENTRY_AUTH_TOKEN": "  "}])
def test_missing_token_is_one_line_naming_variable_and_scopes(environ):
    with pytest.raises(SettingsError) as caught:
        SentrySettings.from_env(environ, org="acme", project="web")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("SENTRY_AUTH_TOKEN is not set")
    for scope in ("org:read", "project:read", "alerts:read", "event:read", "member:read"):
        assert scope in message


def test_missing_org_is_a_settings_error():
    with pytest.raises(SettingsError, match="SENTRY_ORG is not set"):
        SentrySettings.from_env({"SENTRY_AUTH_TOKEN": TOKEN}, project="web")


def test_bad_base_url_is_a_settings_error():
    with pytest.raises(SettingsError, match="SENTRY_BASE_URL must be an http"):
        SentrySettings(token=TOKEN, org="a", project="b", base_url="sentry.io")


def test_redact_hides_given_secrets_and_anything_token_shaped():
    other = "sntrys_" + "Z" * 40
    assert redact(f"key=abcd1234 and {other}", ["abcd1234"]) == "key=[redacted] and [redacted]"
    assert redact("nothing secret", [None, ""]) == "nothing secret"
