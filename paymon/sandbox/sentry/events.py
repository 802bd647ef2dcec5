"""Stored events and the issues they group into, as Sentry keeps them after ingestion.

    store = EventStore(organization, first_short_id=42)
    stored, issue = store.add(payload, item_type="event", project=..., received=clock.now(), visible_at=...)
    store.visible_events(now, start, end)        # time-indexed (bisect) slice, oldest first
    serialize_event(stored, issue, project, now) # ProjectEventDetailsResponse
    serialize_issue(issue, now, web_url)         # OrganizationGroupIndexGetResponse item

Time: every stored event carries `received`, the sandbox clock time Relay accepted it. That is the
timeline alerts, `statsPeriod` and issue first/last seen use - the SDK stamps events with wall time,
which knows nothing of `hub.clock.advance()`. The event's own `timestamp` is kept for display.

Grouping (the part of Sentry's grouping paymon relies on): an explicit `fingerprint` wins
(`{{ default }}` inside it stands for the default hash); otherwise the message template
(`logentry.message`, so "Order %s failed" with different params is one issue), otherwise the
outermost exception's type. Transactions never group into error issues.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from paymon.sandbox.sentry.ingest import iso, normalise_event_id, new_event_id, parse_timestamp

LEVEL_PRIORITY = {"fatal": "high", "error": "high", "warning": "medium", "info": "low", "debug": "low"}
TITLE_LIMIT = 100
# Crockford-style base32 Sentry uses for short ids (`base32_encode` in sentry/utils/strings.py).
_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def base32(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 32)
        digits = _BASE32[rest] + digits
        if number == 0:
            return digits


@dataclass
class StoredEvent:
    event_id: str
    project_id: str
    data: dict
    """The normalised payload: what the search matcher, serializers and alert engine read."""
    type: str  # "error" | "default" | "transaction"
    received: float
    visible_at: float
    group_id: str | None = None
    size: int = 0

    @property
    def environment(self) -> str | None:
        return self.data.get("environment")

    @property
    def duration_ms(self) -> float | None:
        return self.data.get("_duration_ms")


@dataclass
class Issue:
    id: str
    short_number: int
    project: dict
    grouping_key: tuple
    title: str
    culprit: str
    level: str
    type: str
    metadata: dict
    platform: str | None
    logger: str | None
    status: str = "unresolved"
    substatus: str = "new"
    events: list[StoredEvent] = field(default_factory=list)
    first_seen: float = 0.0

    @property
    def short_id(self) -> str:
        return f"{self.project['slug'].upper()}-{base32(self.short_number)}"

    def visible_events(self, now: float) -> list[StoredEvent]:
        return [e for e in self.events if e.visible_at <= now]


# --- normalisation (what Relay + the event processor make of a payload) ---------------------------


def message_of(data: dict) -> str:
    """The formatted message (`capture_message` text or a logged error's message), else ""."""
    message = data.get("message")
    if isinstance(message, dict):
        message = message.get("formatted") or message.get("message")
    if not message:
        logentry = data.get("logentry") or {}
        message = logentry.get("formatted") or logentry.get("message")
    return str(message or "")


def exceptions_of(data: dict) -> list[dict]:
    exception = data.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else exception
    return [v for v in values or () if isinstance(v, dict)]


def _tag_text(value: object) -> str:
    # Relay keeps JSON booleans as "True"/"False" (the old Python spelling), numbers as text.
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def _tags_dict(tags: object) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): _tag_text(v) for k, v in tags.items()}
    out = {}
    for item in tags or ():
        if isinstance(item, (list, tuple)) and len(item) == 2:
            out[str(item[0])] = _tag_text(item[1])
        elif isinstance(item, dict) and "key" in item:
            out[str(item["key"])] = _tag_text(item.get("value"))
    return out


def _first_line(text: str, limit: int = TITLE_LIMIT) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _culprit(data: dict) -> str:
    if data.get("culprit"):
        return str(data["culprit"])
    for exc in reversed(exceptions_of(data)):
        frames = ((exc.get("stacktrace") or {}).get("frames")) or []
        in_app = [f for f in frames if f.get("in_app")] or frames
        if in_app:
            frame = in_app[-1]  # the crashing frame is last
            where = frame.get("module") or frame.get("filename") or "?"
            return f"{where} in {frame.get('function') or '?'}"
    return str(data.get("transaction") or "")


def normalise(payload: dict, item_type: str, envelope_event_id: str | None, received: float) -> dict:
    """A stored copy of the payload with the fields Sentry derives at ingestion."""
    data = dict(payload)
    data["event_id"] = (normalise_event_id(data.get("event_id")) or envelope_event_id or new_event_id())
    if item_type == "transaction" or data.get("type") == "transaction":
        data["type"] = "transaction"
        data.setdefault("level", "info")
    else:
        data["type"] = "error" if exceptions_of(data) else "default"
        data["level"] = str(data.get("level") or "error").lower()
    if isinstance(data.get("message"), dict):  # logentry sent under "message"
        data["logentry"] = data.pop("message")
    text = message_of(data)
    if text:
        data["message"] = text
        data.setdefault("logentry", {"formatted": text})
    data["tags"] = _tags_dict(data.get("tags"))
    timestamp = parse_timestamp(data.get("timestamp"))
    data["timestamp"] = received if timestamp is None else timestamp
    start = parse_timestamp(data.get("start_timestamp"))
    if start is not None:
        data["start_timestamp"] = start
    if data["type"] == "transaction" and start is not None:
        data["_duration_ms"] = max(0.0, (data["timestamp"] - start) * 1000.0)
    data["culprit"] = _culprit(data)
    data["_received"] = received
    return data


def title_of(data: dict) -> str:
    if data["type"] == "transaction":
        return str(data.get("transaction") or "<unlabeled transaction>")
    excs = exceptions_of(data)
    if excs:
        outer = excs[-1]
        kind, value = str(outer.get("type") or "Error"), _first_line(str(outer.get("value") or ""), 256)
        return _first_line(f"{kind}: {value}" if value else kind)
    return _first_line(message_of(data)) or "<unlabeled event>"


def metadata_of(data: dict) -> dict:
    excs = exceptions_of(data)
    if excs:
        outer = excs[-1]
        frames = ((outer.get("stacktrace") or {}).get("frames")) or []
        meta = {"type": str(outer.get("type") or "Error"), "value": str(outer.get("value") or "")}
        if frames:
            meta["filename"] = str(frames[-1].get("filename") or "")
            meta["function"] = str(frames[-1].get("function") or "")
        meta["in_app_frame_mix"] = "in-app-only" if frames and all(f.get("in_app") for f in frames) else "mixed"
        return meta
    return {"title": title_of(data)}


def grouping_key(data: dict) -> tuple:
    default = _default_grouping(data)
    fingerprint = data.get("fingerprint")
    if isinstance(fingerprint, list) and fingerprint:
        parts = tuple(default if str(p) in ("{{ default }}", "{{default}}") else ("fp", str(p))
                      for p in fingerprint)
        if parts != (default,):
            return ("fingerprint",) + parts
    return default


def _default_grouping(data: dict) -> tuple:
    logentry = data.get("logentry") or {}
    template = logentry.get("message") or logentry.get("formatted")
    if template and not exceptions_of(data):
        return ("message", str(template))
    excs = exceptions_of(data)
    if excs:
        return ("exception", str(excs[-1].get("type") or "Error"))
    return ("message", str(template or ""))


# --- the store -------------------------------------------------------------------------------------


class EventStore:
    """Events by id and by time (parallel sorted lists, so a window is two bisects), and issues
    by id and by grouping key. Not thread-safe on its own: the backend holds its lock around it."""

    def __init__(self, first_issue_id: int = 6900000001, first_short_id: int = 42):
        self.by_id: dict[str, StoredEvent] = {}
        self._times: list[float] = []
        self._timeline: list[StoredEvent] = []
        self.issues: dict[str, Issue] = {}
        self._issue_keys: dict[tuple, Issue] = {}
        self._next_issue_id = first_issue_id
        self._first_short_id = first_short_id
        self._short_numbers: dict[str, int] = {}

    def add(self, data: dict, project: dict, received: float, visible_at: float, size: int = 0
            ) -> tuple[StoredEvent, Issue | None, bool]:
        """Store a normalised event; returns (event, its issue or None, whether the issue is new).
        A duplicate event id replaces nothing (Relay drops duplicates)."""
        existing = self.by_id.get(data["event_id"])
        if existing is not None:
            return existing, self.issues.get(existing.group_id or ""), False
        stored = StoredEvent(data["event_id"], str(project["id"]), data, data["type"], received,
                             visible_at, size=size)
        issue, created = None, False
        if stored.type != "transaction":
            issue, created = self._group(stored, project)
        self.by_id[stored.event_id] = stored
        position = bisect.bisect_right(self._times, received)
        self._times.insert(position, received)
        self._timeline.insert(position, stored)
        return stored, issue, created

    def _group(self, stored: StoredEvent, project: dict) -> tuple[Issue, bool]:
        key = (str(project["id"]),) + grouping_key(stored.data)
        issue = self._issue_keys.get(key)
        created = issue is None
        if created:
            number = self._short_numbers.get(str(project["id"]), self._first_short_id)
            self._short_numbers[str(project["id"])] = number + 1
            data = stored.data
            issue = Issue(
                id=str(self._next_issue_id), short_number=number, project=project, grouping_key=key,
                title=title_of(data), culprit=data.get("culprit") or "", level=data["level"], type=stored.type,
                metadata=metadata_of(data), platform=data.get("platform"), logger=data.get("logger"),
                first_seen=stored.received,
            )
            self._next_issue_id += 1
            self.issues[issue.id] = issue
            self._issue_keys[key] = issue
        elif issue.status == "resolved":
            # A new event on a resolved issue is a regression: Sentry reopens it.
            issue.status, issue.substatus = "unresolved", "regressed"
        issue.level = stored.data["level"]
        stored.group_id = issue.id
        # Kept in arrival order (an event stored with an earlier time goes where it belongs), so
        # windows over one issue are a bisect.
        bisect.insort(issue.events, stored, key=lambda e: e.received)
        return issue, created

    def delete_issue(self, issue: Issue) -> None:
        self.issues.pop(issue.id, None)
        self._issue_keys.pop(issue.grouping_key, None)
        doomed = {e.event_id for e in issue.events}
        for event_id in doomed:
            self.by_id.pop(event_id, None)
        kept = [(t, e) for t, e in zip(self._times, self._timeline) if e.event_id not in doomed]
        self._times = [t for t, _ in kept]
        self._timeline = [e for _, e in kept]

    def window(self, start: float | None, end: float | None) -> list[StoredEvent]:
        """Events received in (start, end], oldest first."""
        lo = 0 if start is None else bisect.bisect_right(self._times, start)
        hi = len(self._times) if end is None else bisect.bisect_right(self._times, end)
        return self._timeline[lo:hi]

    def visible_events(self, now: float, start: float | None = None, end: float | None = None) -> list[StoredEvent]:
        return [e for e in self.window(start, end) if e.visible_at <= now]

    def __len__(self) -> int:
        return len(self._timeline)


# --- serialisation ---------------------------------------------------------------------------------


def api_tags(data: dict) -> list[dict]:
    """Tags as the API lists them: the event's tags plus the ones Sentry derives, sorted by key."""
    tags = dict(data.get("tags") or {})
    tags.setdefault("level", data.get("level"))
    for key in ("environment", "release", "dist", "transaction", "server_name"):
        if data.get(key):
            tags.setdefault(key, str(data[key]))
    return [{"key": k, "value": str(v)} for k, v in sorted(tags.items()) if v is not None]


def _frame(frame: dict, platform: str | None) -> dict:
    """A stack frame as the event serializer renders it (camelCase, every key present)."""
    return {
        "function": str(frame.get("function") or "?"),
        "errors": None,
        "colNo": frame.get("colno"),
        "vars": frame.get("vars"),
        "package": frame.get("package"),
        "absPath": frame.get("abs_path"),
        "inApp": bool(frame.get("in_app")),
        "lineNo": int(frame.get("lineno") or 0),
        "module": str(frame.get("module") or ""),
        "filename": str(frame.get("filename") or frame.get("abs_path") or ""),
        "platform": frame.get("platform") or platform,
        "instructionAddr": frame.get("instruction_addr"),
        "context": [[int(n), str(line)] for n, line in _context_lines(frame)],
        "symbolAddr": frame.get("symbol_addr"),
        "trust": frame.get("trust"),
        "symbol": frame.get("symbol"),
    }


def _context_lines(frame: dict) -> list[tuple[int, str]]:
    line_no = int(frame.get("lineno") or 0)
    before, current, after = frame.get("pre_context") or [], frame.get("context_line"), frame.get("post_context") or []
    if current is None:
        return []
    start = line_no - len(before)
    lines = [*before, current, *after]
    return [(start + i, text) for i, text in enumerate(lines)]


def _exception_entry(excs: list[dict], platform: str | None) -> dict:
    values = []
    for exc in excs:
        stacktrace = exc.get("stacktrace") if isinstance(exc.get("stacktrace"), dict) else None
        frames = [_frame(f, platform) for f in (stacktrace or {}).get("frames") or () if isinstance(f, dict)]
        mechanism = exc.get("mechanism") if isinstance(exc.get("mechanism"), dict) else None
        values.append({
            "type": str(exc.get("type") or "Error"),
            "value": str(exc.get("value") or ""),
            "module": exc.get("module"),
            "threadId": None if exc.get("thread_id") is None else str(exc.get("thread_id")),
            "mechanism": mechanism,
            "stacktrace": None if stacktrace is None else {
                "frames": frames, "framesOmitted": None, "registers": None,
                "hasSystemFrames": any(not f["inApp"] for f in frames)},
            "rawStacktrace": None,
        })
    has_system = any(v["stacktrace"] and v["stacktrace"]["hasSystemFrames"] for v in values)
    return {"type": "exception", "data": {"values": values, "hasSystemFrames": has_system, "excOmitted": None}}


def _breadcrumbs_entry(values: list) -> dict:
    crumbs = []
    for crumb in values:
        if not isinstance(crumb, dict):
            continue
        moment = parse_timestamp(crumb.get("timestamp"))
        crumbs.append({"type": str(crumb.get("type") or "default"), "category": str(crumb.get("category") or ""),
                       "level": str(crumb.get("level") or "info"), "event_id": crumb.get("event_id"),
                       "timestamp": iso(moment) if moment is not None else None,
                       "data": crumb.get("data") if isinstance(crumb.get("data"), dict) else None,
                       "message": crumb.get("message")})
    return {"type": "breadcrumbs", "data": {"values": [c for c in crumbs if c["timestamp"]]}}


def _pairs(value: object) -> list[list[str]]:
    if isinstance(value, dict):
        return [[str(k), str(v)] for k, v in value.items()]
    if isinstance(value, str):
        return [[k, v] for k, _, v in (part.partition("=") for part in value.split("&") if part)]
    return [[str(p[0]), str(p[1])] for p in value or () if isinstance(p, (list, tuple)) and len(p) == 2]


def _request_entry(request: dict) -> dict:
    return {"type": "request", "data": {
        "method": request.get("method"), "url": str(request.get("url") or ""),
        "query": _pairs(request.get("query_string")), "fragment": request.get("fragment"),
        "data": request.get("data") if isinstance(request.get("data"), dict) else None,
        "headers": _pairs(request.get("headers")), "cookies": _pairs(request.get("cookies")) or None,
        "env": request.get("env") if isinstance(request.get("env"), dict) else None,
        "inferredContentType": None}}


def _entries(data: dict) -> list[dict]:
    """The event's interfaces as the event serializer lists them. (Transactions' `spans` entry is
    left out: paymon never reads it and the 05 schema has no variant for it.)"""
    entries = []
    excs = exceptions_of(data)
    if excs:
        entries.append(_exception_entry(excs, data.get("platform")))
    elif message_of(data):
        logentry = data.get("logentry") or {}
        entries.append({"type": "message", "data": {"formatted": message_of(data),
                                                     "message": logentry.get("message"),
                                                     "params": logentry.get("params")}})
    breadcrumbs = data.get("breadcrumbs")
    values = breadcrumbs.get("values") if isinstance(breadcrumbs, dict) else breadcrumbs
    if values:
        entries.append(_breadcrumbs_entry(values))
    if isinstance(data.get("request"), dict):
        entries.append(_request_entry(data["request"]))
    return entries


def _user(data: dict) -> dict | None:
    user = data.get("user")
    if not isinstance(user, dict) or not user:
        return None
    return {"id": str(user.get("id") or ""), "email": user.get("email"), "username": user.get("username"),
            "ip_address": user.get("ip_address"), "name": user.get("name"), "geo": user.get("geo"),
            "data": user.get("data") if isinstance(user.get("data"), dict) else None}


def serialize_event(stored: StoredEvent, project: dict, previous_id: str | None = None,
                    next_id: str | None = None) -> dict:
    data = stored.data
    sdk = data.get("sdk") if isinstance(data.get("sdk"), dict) else None
    body = {
        "id": stored.event_id,
        "eventID": stored.event_id,
        "groupID": stored.group_id,
        "projectID": str(project["id"]),
        "title": title_of(data),
        "message": message_of(data),
        "type": stored.type,
        "platform": str(data.get("platform") or "other"),
        "culprit": data.get("culprit") or None,
        "location": data.get("transaction") or None,
        "dateCreated": iso(data["timestamp"]),
        "dateReceived": iso(stored.received),
        "tags": api_tags(data),
        "user": _user(data),
        "contexts": data.get("contexts") if isinstance(data.get("contexts"), dict) else {},
        "context": data.get("extra") if isinstance(data.get("extra"), dict) else {},
        "entries": _entries(data),
        "sdk": {"name": str(sdk.get("name")), "version": str(sdk.get("version"))} if sdk else None,
        "metadata": metadata_of(data),
        "packages": data.get("modules") if isinstance(data.get("modules"), dict) else {},
        "errors": [],
        "fingerprints": [],
        "groupingConfig": {"id": "newstyle:2023-01-11", "enhancements": "KLUv_SAYwQAAkwKRs25ld3N0eWxlOjIwMjMtMDEtMTGQ"},
        "dist": data.get("dist"),
        "release": None,
        "size": stored.size,
        "occurrence": None,
        "crashFile": None,
        "userReport": None,
        "measurements": data.get("measurements") if stored.type == "transaction" else None,
        "breakdowns": None,
        "sdkUpdates": [],
        "resolvedWith": [],
        "nextEventID": next_id,
        "previousEventID": previous_id,
        "_meta": {},
    }
    if stored.type == "transaction":
        body["startTimestamp"] = data.get("start_timestamp") or data["timestamp"]
        body["endTimestamp"] = data["timestamp"]
    return body


def _user_key(data: dict) -> str | None:
    user = data.get("user") if isinstance(data.get("user"), dict) else {}
    for key in ("id", "email", "username", "ip_address"):
        if user.get(key):
            return f"{key}:{user[key]}"
    return None


def serialize_issue(issue: Issue, now: float, permalink: str, events: list[StoredEvent] | None = None) -> dict:
    """One item of `O/issues/` (fields of both specs' OrganizationGroupIndexGetResponse). `events`
    are the visible events counted (all visible ones unless a search narrowed them)."""
    counted = issue.visible_events(now) if events is None else events
    everything = issue.visible_events(now)
    first = min((e.received for e in everything), default=None)
    last = max((e.received for e in everything), default=None)
    users = {u for u in map(_user_key, (e.data for e in counted)) if u}
    hour = 3600
    day_start = int(now // hour) * hour - 23 * hour
    buckets = [[day_start + i * hour, 0] for i in range(24)]
    for event in counted:
        index = int((event.received - day_start) // hour)
        if 0 <= index < 24:
            buckets[index][1] += 1
    project = issue.project
    unhandled = any(
        (exc.get("mechanism") or {}).get("handled") is False
        for e in counted for exc in exceptions_of(e.data))
    lifetime = {"count": str(len(everything)), "userCount": len(users), "firstSeen": iso(first),
                "lastSeen": iso(last), "stats": None}
    return {
        "id": issue.id,
        "shareId": None,
        "shortId": issue.short_id,
        "title": issue.title,
        "culprit": issue.culprit or None,
        "permalink": permalink,
        "logger": issue.logger,
        "level": issue.level if issue.level in LEVEL_PRIORITY else "error",
        "status": issue.status,
        "statusDetails": {},
        "substatus": issue.substatus if issue.status == "unresolved" else None,
        "isPublic": False,
        "platform": issue.platform,
        "priority": LEVEL_PRIORITY.get(issue.level, "high"),
        "priorityLockedAt": None,
        "seerFixabilityScore": None,
        "seerAutofixLastTriggered": None,
        "seerExplorerAutofixLastTriggered": None,
        "project": {"id": str(project["id"]), "name": project.get("name", project["slug"]),
                    "slug": project["slug"], "platform": project.get("platform")},
        "type": issue.type,
        "issueType": "error",
        "issueCategory": "error",
        "metadata": issue.metadata,
        "numComments": 0,
        "assignedTo": None,
        "isBookmarked": False,
        "isSubscribed": False,
        "subscriptionDetails": None,
        "hasSeen": False,
        "annotations": [],
        "isUnhandled": unhandled,
        "count": str(len(counted)),
        "userCount": len(users),
        "firstSeen": iso(first),
        "lastSeen": iso(last),
        "derivedData": {"blocker": "", "progress": "", "status": "", "viewCount": 0, "hasOpenFixPr": False,
                        "isAssigned": False, "hasRootCause": False, "lastCompletedAutofixStep": "",
                        "lastProgressedAt": None},
        "stats": {"24h": buckets},
        "lifetime": lifetime,
        "filtered": None,
        "sessionCount": 0,
        # GroupInbox reason 0 = NEW, 2 = REGRESSION (sentry/models/groupinbox.py).
        "inbox": {"reason": 2 if issue.substatus == "regressed" else 0, "reason_details": None,
                  "date_added": iso(issue.first_seen)},
        "owners": None,
        "integrationIssues": [],
        "sentryAppIssues": [],
        "pluginIssues": [],
        "pluginActions": [],
        "latestEventHasAttachments": False,
        "matchingEventId": counted[-1].event_id if counted and events is not None else None,
        "matchingEventEnvironment": (counted[-1].environment if counted and events is not None else None),
    }
