"""Reading the operations runbook (§6): the markdown, from a file in the repository or over HTTP.

Over HTTP it is GitLab's raw-file API as a rule (`GET /api/v4/projects/:id/repository/files/
:file_path/raw?ref=main`, token in `PRIVATE-TOKEN`: docs.gitlab.com/api/repository_files/#get-raw-
file-from-repository); any URL that answers the markdown works. The answer's `Date` is kept: the
runbook's age is judged on the serving side's clock (the sandbox's in a sandbox run), not this
machine's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from paymon.config.settings import RunbookSettings, redact
from paymon.errors import AuthError, ServiceError, TargetUnavailable

_RETRIES = 3


@dataclass(frozen=True)
class RunbookDocument:
    text: str
    where: str
    """The file or URL it came from (no token)."""
    served_at: float | None = None
    """The server's `Date` (epoch seconds), when it sent one."""


def read_runbook(settings: RunbookSettings, timeout: float = 10.0) -> RunbookDocument:
    """The runbook's text, or TargetUnavailable saying why it cannot be read ("could not check")."""
    if settings.path is not None:
        try:
            return RunbookDocument(Path(settings.path).read_text(encoding="utf-8"), settings.path)
        except OSError as exc:
            raise TargetUnavailable(f"runbook {settings.path}: cannot read it ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise TargetUnavailable(f"runbook {settings.path}: not UTF-8 text") from None
    headers = {"Accept": "text/markdown, text/plain;q=0.9, */*;q=0.1", "User-Agent": "paymon/runbook"}
    if settings.token is not None:
        headers[settings.token_header] = settings.token.get_secret_value()
    secrets = [settings.token]
    last_error = ""
    for attempt in range(_RETRIES):
        try:
            response = httpx.get(settings.url, headers=headers, timeout=timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            last_error = redact(f"{type(exc).__name__}: {exc}", secrets)
            time.sleep(0.2 * (attempt + 1))
            continue
        status = response.status_code
        if status in (429, 500, 502, 503, 504):
            last_error = f"HTTP {status}"
            time.sleep(0.2 * (attempt + 1))
            continue
        return _document(response, settings, secrets)
    raise ServiceError(f"runbook {settings.where}: {last_error} after {_RETRIES} attempts")


def _document(response: httpx.Response, settings: RunbookSettings, secrets) -> RunbookDocument:
    where, status = settings.where, response.status_code
    token_hint = ("" if settings.token is not None
                  else "; a private project needs PAYMON_RUNBOOK_TOKEN (a token with read_repository)")
    if status in (401, 403):
        raise AuthError(f"runbook {where}: HTTP {status} (the token cannot read it{token_hint})")
    if 300 <= status < 400:
        # GitLab sends a private project's web pages to its sign-in page.
        raise TargetUnavailable(f"runbook {where}: redirected (HTTP {status}) to "
                                f"{redact(response.headers.get('location', '?'), secrets)}: point runbook.source "
                                "at the raw-file API, not a web page")
    if status == 404:
        # GitLab answers 404, not 401, for a private project asked without a token.
        raise TargetUnavailable(f"runbook {where}: HTTP 404 (no such file or project{token_hint})")
    if status != 200:
        raise TargetUnavailable(f"runbook {where}: HTTP {status}")
    kind = response.headers.get("content-type", "")
    if "html" in kind:
        raise TargetUnavailable(f"runbook {where}: answered HTML ({kind}), not the markdown: point runbook.source "
                                "at the raw-file API")
    served_at = None
    try:
        served_at = parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        pass
    return RunbookDocument(response.text, where, served_at)


def read_runbook_history(settings: RunbookSettings, timeout: float = 10.0) -> list[float]:
    """When each line of the runbook last changed (epoch seconds, one per line, in file order):
    GitLab's blame endpoint beside the raw one (`.../files/:file_path/blame?ref=`, its ranges'
    `commit.committed_date`), or `git blame` of a repository file. TargetUnavailable otherwise."""
    if settings.path is not None:
        return _git_blame(settings.path)
    url = settings.url or ""
    head, sep, tail = url.partition("/raw")
    if not sep or (tail and not tail.startswith(("?", "/"))):
        raise TargetUnavailable(f"runbook {settings.where}: its history is read from GitLab's blame API, beside "
                                "the raw-file URL (runbook.source: .../files/<path>/raw?ref=...)")
    headers = {"User-Agent": "paymon/runbook"}
    if settings.token is not None:
        headers[settings.token_header] = settings.token.get_secret_value()
    try:
        response = httpx.get(head + "/blame" + tail, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ServiceError(redact(f"runbook history {settings.where}: {type(exc).__name__}: {exc}",
                                  [settings.token])) from None
    if response.status_code != 200:
        raise TargetUnavailable(f"runbook history {settings.where}: blame answered HTTP {response.status_code}")
    stamps = []
    for block in response.json():
        when = _iso((block.get("commit") or {}).get("committed_date"))
        stamps += [when] * len(block.get("lines") or [])
    return stamps


def _iso(text) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise TargetUnavailable(f"runbook history: a commit date GitLab sent is unreadable: {text!r}") from None


def _git_blame(path: str) -> list[float]:
    import subprocess

    try:
        out = subprocess.run(["git", "blame", "--line-porcelain", "--", Path(path).name], cwd=Path(path).parent,
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise TargetUnavailable(f"runbook history {path}: git blame failed ({exc})") from None
    return [float(line.split()[1]) for line in out.splitlines() if line.startswith("committer-time ")]
