"""GitLab's repository files API (raw endpoint), its authentication and its answers.

World shape (`world["gitlab"]`):

    tokens      [{"token", "scopes"}]             personal/project access tokens; read_repository or api reads
    projects    [{"id", "path_with_namespace", "visibility", "default_branch",
                  "files": {path: {"content", "last_reviewed_days_ago"?}}}]
    knobs       {}                                 nothing yet

`last_reviewed_days_ago`: the file's `{last_reviewed}` placeholder becomes the date that many days
before the sandbox clock at start, so a golden runbook is as fresh on any day the suite runs (the
app's history is dated the same way).

History, for the blame endpoint (`GET .../files/:file_path/blame?ref=`, docs.gitlab.com/api/
repository_files/#get-file-blame-from-repository: `[{"commit": {...}, "lines": [...]}]`, ranges of
consecutive lines last changed by one commit, in file order): `changed_days_ago` (every line, default
90) and `sections_changed_days_ago` {"#anchor": days}: a later commit that rewrote that section
(its heading to the next heading of the same or a higher level).

Behaviour, after GitLab (docs.gitlab.com/api/rest/authentication/, .../api/repository_files/):
- the token comes in `PRIVATE-TOKEN` or `Authorization: Bearer`; an unknown one is 401
  `{"message":"401 Unauthorized"}` whatever the project;
- a private project asked without a token (or with one lacking read_repository/api) is 404
  `{"message":"404 Project Not Found"}`: GitLab does not reveal that it exists;
- an unknown file or ref is 404 `{"message":"404 File Not Found"}`; `ref` defaults to the
  project's default branch;
- `:id` is the numeric id or the URL-encoded path (`towerofbabel%2Fpayments`), `:file_path` URL-encoded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote

_RAW = re.compile(r"^/api/v4/projects/([^/]+)/repository/files/([^/]+)/(raw|blame)/?$")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_READ_SCOPES = {"read_repository", "api"}


class GitLabBackend:
    def __init__(self, world_gitlab: dict, hub=None):
        self.world = world_gitlab
        self.hub = hub
        self._lock = threading.Lock()
        self.requests: list[tuple[str, int]] = []
        self.projects = [self._dated(p) for p in world_gitlab.get("projects", [])]
        self.tokens = {t["token"]: set(t.get("scopes") or []) for t in world_gitlab.get("tokens", [])}

    def now(self) -> float:
        return self.hub.clock.now() if self.hub is not None else datetime.now(timezone.utc).timestamp()

    def _dated(self, project: dict) -> dict:
        project = {**project, "files": dict(project.get("files") or {})}
        start = datetime.fromtimestamp(self.now(), timezone.utc).date()
        for path, file in project["files"].items():
            content = file.get("content", "")
            if "last_reviewed_days_ago" in file:
                reviewed = start - timedelta(days=int(file["last_reviewed_days_ago"]))
                content = content.replace("{last_reviewed}", reviewed.isoformat())
            project["files"][path] = {**file, "content": content}
        return project

    @property
    def default_token(self) -> str:
        return next(iter(self.tokens), "")

    def set_file(self, project_path: str, file_path: str, content: str) -> None:
        """Tests: replace a file's content (a commit, as far as the raw endpoint can tell)."""
        with self._lock:
            self._project(project_path)["files"][file_path] = {"content": content}

    def _project(self, ref: str) -> dict | None:
        ref = unquote(ref)
        for project in self.projects:
            if ref in (str(project.get("id")), project.get("path_with_namespace")):
                return project
        return None

    def raw_file(self, raw_path: str, query: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        token = headers.get("private-token") or _bearer(headers.get("authorization", ""))
        scopes = self.tokens.get(token) if token else None
        if token and scopes is None:
            return _json(401, {"message": "401 Unauthorized"})
        match = _RAW.match(raw_path)
        if not match:
            return _json(404, {"error": "404 Not Found"})
        with self._lock:
            project = self._project(match.group(1))
            readable = project is not None and (project.get("visibility") == "public"
                                                or bool(scopes and scopes & _READ_SCOPES))
            if not readable:
                return _json(404, {"message": "404 Project Not Found"})
            ref = (parse_qs(query).get("ref") or [project.get("default_branch", "main")])[0]
            file = project["files"].get(unquote(match.group(2))) if ref == project.get("default_branch") else None
            if file is None:
                return _json(404, {"message": "404 File Not Found"})
            if match.group(3) == "blame":
                return _json(200, self._blame(file))
            body = file["content"].encode("utf-8")
        return 200, {"content-type": "text/plain; charset=utf-8", "x-gitlab-file-path": unquote(match.group(2)),
                     "x-gitlab-ref": ref}, body


    def _blame(self, file: dict) -> list[dict]:
        start = self.now()
        base = start - float(file.get("changed_days_ago", 90)) * 86400
        sections = {a.lstrip("#"): start - float(d) * 86400
                    for a, d in (file.get("sections_changed_days_ago") or {}).items()}
        stamps, current, level = [], None, 0
        for line in file["content"].splitlines():
            heading = _HEADING.match(line)
            if heading:
                depth = len(line.lstrip()) - len(line.lstrip().lstrip("#"))
                anchor = _anchor(heading.group(1))
                if anchor in sections:
                    current, level = anchor, depth
                elif current is not None and depth <= level:
                    current = None
            stamps.append(sections[current] if current is not None else base)
        ranges: list[dict] = []
        for line, stamp in zip(file["content"].splitlines(), stamps):
            if ranges and ranges[-1]["_at"] == stamp:
                ranges[-1]["lines"].append(line)
            else:
                ranges.append({"_at": stamp, "commit": _commit(stamp), "lines": [line]})
        return [{"commit": r["commit"], "lines": r["lines"]} for r in ranges]


def _anchor(title: str) -> str:
    """GitLab's heading id (as paymon.findings.runbook computes it)."""
    text = re.sub(r"[^\w\- ]", "", re.sub(r"<[^>]+>", "", title).strip().lower()).replace(" ", "-")
    return re.sub(r"-{2,}", "-", text)


def _commit(at: float) -> dict:
    when = datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds").replace("+00:00", ".000Z")
    sha = hashlib.sha1(f"paymon-sandbox-runbook-{round(at)}".encode()).hexdigest()
    return {"id": sha, "parent_ids": [], "message": "Update the payment monitoring runbook",
            "authored_date": when, "author_name": "Dana Whitfield", "author_email": "dana@towerofbabel.com",
            "committed_date": when, "committer_name": "Dana Whitfield", "committer_email": "dana@towerofbabel.com"}


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _json(status: int, body: dict) -> tuple[int, dict, bytes]:
    return status, {"content-type": "application/json"}, json.dumps(body).encode()


def build_gitlab_app(backend: GitLabBackend):
    """A bare ASGI app: GitLab's ids and file paths are URL-encoded slashes (`%2F`), which routing
    on the decoded path would split, so the raw path is matched."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        raw_path = scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        root = scope.get("root_path", "")
        if root and raw_path.startswith(root):
            raw_path = raw_path[len(root):]
        if scope["method"] not in ("GET", "HEAD"):
            status, extra, body = _json(405, {"error": "405 Method Not Allowed"})
        else:
            status, extra, body = backend.raw_file(raw_path, scope.get("query_string", b"").decode("latin-1"),
                                                   headers)
        backend.requests.append((raw_path, status))
        out = {"content-length": str(len(body)), **extra}
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in out.items()]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return app
