"""What Relay does with an SDK request before anything is stored: decode, authenticate, split.

Pure functions over bytes and headers (no HTTP framework, no backend state), so the envelope
format can be tested byte for byte (sentry-api.md §9):

    body = decode_body(raw, request.headers.get("content-encoding"))
    key = public_key_from(headers, query, envelope_header)     # X-Sentry-Auth, ?sentry_key=, dsn
    envelope = parse_envelope(body)                             # header + items split by `length`

Every rejection is an `IngestRejected` carrying Relay's status and `{"detail": ...}` body.
"""

from __future__ import annotations

import gzip
import json
import re
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from paymon.sandbox.sentry.exceptions import IngestRejected

try:  # sentry-sdk itself switches to `br` when brotli is importable; decode it when we can.
    import brotli as _brotli
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None

# Relay's limits (config defaults; they change over time, emulated loosely - §9.2).
MAX_EVENT_BYTES = 1024 * 1024
MAX_CHECK_IN_BYTES = 100 * 1024
MAX_ENVELOPE_BYTES = 100 * 1024 * 1024

# Envelope item type -> the rate-limit category the SDK understands (§9.3).
ITEM_CATEGORIES = {
    "event": "error", "transaction": "transaction", "check_in": "monitor", "session": "session",
    "sessions": "session", "attachment": "attachment", "profile": "profile", "span": "span",
    "log": "log_item", "client_report": "internal", "trace_metric": "trace_metric",
}
STORED_ITEM_TYPES = ("event", "transaction", "check_in", "trace_metric")


@dataclass(frozen=True)
class EnvelopeItem:
    headers: dict
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers.get("type") or "")

    @property
    def category(self) -> str:
        return ITEM_CATEGORIES.get(self.type, self.type)

    def json(self) -> dict:
        try:
            value = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise IngestRejected(400, f"invalid {self.type} item: {exc}") from None
        if not isinstance(value, dict):
            raise IngestRejected(400, f"invalid {self.type} item: expected a JSON object")
        return value


@dataclass(frozen=True)
class Envelope:
    headers: dict
    items: list[EnvelopeItem] = field(default_factory=list)

    @property
    def event_id(self) -> str | None:
        return normalise_event_id(self.headers.get("event_id"))


# --- body decoding ---------------------------------------------------------------------------------


def _inflate(data: bytes) -> bytes:
    # HTTP "deflate" is zlib-wrapped, but some clients send a raw deflate stream: accept both.
    try:
        return zlib.decompress(data)
    except zlib.error:
        return zlib.decompress(data, -zlib.MAX_WBITS)


def decode_body(raw: bytes, content_encoding: str | None) -> bytes:
    """Undo `Content-Encoding` (gzip, br, deflate, identity; comma lists are applied in reverse)."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    data = raw
    for coding in reversed(codings):
        try:
            if coding in ("gzip", "x-gzip"):
                data = gzip.decompress(data)
            elif coding == "deflate":
                data = _inflate(data)
            elif coding == "br":
                if _brotli is None:
                    raise IngestRejected(415, "unsupported content encoding: br")
                data = _brotli.decompress(data)
            elif coding != "identity":
                raise IngestRejected(415, f"unsupported content encoding: {coding}")
        except IngestRejected:
            raise
        except Exception as exc:  # corrupt stream: gzip.BadGzipFile, zlib.error, brotli.error, EOFError
            raise IngestRejected(400, f"failed to decode {coding} body: {exc}") from None
        if len(data) > MAX_ENVELOPE_BYTES:
            raise IngestRejected(413, "envelope exceeded size limits")
    return data


# --- authentication --------------------------------------------------------------------------------

_AUTH_PAIR = re.compile(r"(\w+)\s*=\s*([^,\s]*)")


def parse_auth_header(value: str) -> dict[str, str]:
    """`Sentry sentry_key=abc, sentry_version=7, sentry_client=...` -> {"sentry_key": "abc", ...}."""
    text = value.strip()
    if text.lower().startswith("sentry "):
        text = text[7:]
    elif text.lower() == "sentry":
        text = ""
    pairs = dict(_AUTH_PAIR.findall(text))
    if not pairs:
        raise IngestRejected(401, "bad x-sentry-auth header")
    return pairs


def public_key_from(headers, query, envelope_header: dict | None = None) -> str:
    """The DSN public key, from the `X-Sentry-Auth` header, `?sentry_key=`, or the envelope's
    `dsn` header, in Relay's order. Missing everywhere -> 401."""
    header = headers.get("x-sentry-auth")
    if header:
        key = parse_auth_header(header).get("sentry_key")
        if key:
            return key
        raise IngestRejected(401, "bad x-sentry-auth header")
    if query.get("sentry_key"):
        return query["sentry_key"]
    dsn = (envelope_header or {}).get("dsn")
    if dsn:
        username = urlsplit(str(dsn)).username
        if username:
            return username
    raise IngestRejected(401, "missing authorization information")


# --- envelopes -------------------------------------------------------------------------------------


def _json_line(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data) if data.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestRejected(400, f"invalid envelope: {what} is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise IngestRejected(400, f"invalid envelope: {what} is not an object")
    return value


def parse_envelope(body: bytes) -> Envelope:
    """Split a newline-delimited envelope: a header line, then per item a header line and a
    payload of exactly `length` bytes (or up to the next newline when `length` is absent)."""
    if len(body) > MAX_ENVELOPE_BYTES:
        raise IngestRejected(413, "envelope exceeded size limits")
    end = body.find(b"\n")
    header_line, pos = (body, len(body)) if end < 0 else (body[:end], end + 1)
    if not header_line.strip():
        raise IngestRejected(400, "invalid envelope: empty envelope header")
    envelope = Envelope(_json_line(header_line, "the envelope header"))
    while pos < len(body):
        end = body.find(b"\n", pos)
        line = body[pos:] if end < 0 else body[pos:end]
        pos = len(body) if end < 0 else end + 1
        if not line.strip():
            continue  # trailing newlines between / after items
        item_header = _json_line(line, "an item header")
        if "type" not in item_header:
            raise IngestRejected(400, "invalid envelope: item header without type")
        length = item_header.get("length")
        if length is not None:
            if not isinstance(length, int) or length < 0:
                raise IngestRejected(400, "invalid envelope: item length is not a non-negative integer")
            if pos + length > len(body):
                raise IngestRejected(400, "invalid envelope: unexpected end of file")
            payload = body[pos:pos + length]
            pos += length
            if pos < len(body) and body[pos:pos + 1] == b"\n":
                pos += 1
        else:
            end = body.find(b"\n", pos)
            payload = body[pos:] if end < 0 else body[pos:end]
            pos = len(body) if end < 0 else end + 1
        envelope.items.append(EnvelopeItem(item_header, payload))
    return envelope


def envelope_from_store_body(body: bytes) -> Envelope:
    """The legacy `/store/` endpoint takes one bare event JSON; treat it as a one-item envelope."""
    event = _json_line(body, "the event")
    kind = "transaction" if event.get("type") == "transaction" else "event"
    return Envelope({"event_id": event.get("event_id")}, [EnvelopeItem({"type": kind}, body)])


def check_item_size(item: EnvelopeItem) -> None:
    limit = MAX_CHECK_IN_BYTES if item.type == "check_in" else MAX_EVENT_BYTES
    if item.type in STORED_ITEM_TYPES and len(item.payload) > limit:
        raise IngestRejected(413, f"{item.type} exceeded size limits")


# --- small value helpers ---------------------------------------------------------------------------

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def normalise_event_id(value: object) -> str | None:
    """32 lower-case hex digits (the SDK's form), accepting a dashed UUID too; None if invalid."""
    if value is None:
        return None
    text = str(value).strip().lower().replace("-", "")
    return text if _HEX32.match(text) else None


def new_event_id() -> str:
    return uuid.uuid4().hex


def parse_timestamp(value: object) -> float | None:
    """Epoch seconds from an RFC 3339 string (Python SDK) or a number (other SDKs)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def iso(epoch: float | None, micro: bool = True) -> str | None:
    """Sentry's API timestamp form: `2026-08-16T02:00:49.517230Z`."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f" if micro else "%Y-%m-%dT%H:%M:%S")
    return text + "Z"
