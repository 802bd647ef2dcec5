"""Sentry's search syntax (the subset alerts use), parsed into one canonical, hashable predicate.

Two queries that mean the same compare equal once parsed: `tags[x]:v`, `tags.x:v` (the guide's
form) and `x:v` are one term; `message:x`, `message:*x*` and `message:"*X*"` are one
case-insensitive "contains"; `a OR b` equals `b OR a`; `a AND b` equals `a b`; `k:[a,b]` equals
`k:a OR k:b`. And/Or nodes are flattened, de-duplicated and sorted, so `==` and `hash` work on
meaning rather than spelling.

    parse(text)              -> predicate (Term | And | Or | None; None matches everything)
    render(pred)             -> a readable query string
    extract_levels(pred)     -> (frozenset of levels ANDed at the top, the rest)
    drop_terms(pred, keys)   -> pred without the ANDed terms on those keys
    matches(pred, event)     -> does an ingested Sentry event satisfy pred?

Grammar: ``or := and ("OR" and)*``, ``and := unit (["AND"] unit)*``, ``unit := "(" or ")" | term``,
``term := ["!"] key ":" value | "has:" key | free-text``. Whitespace is AND; AND binds tighter than
OR, as in Sentry.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Union

# --- the predicate ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    key: str
    """Canonical key: a built-in field (`message`, `level`, `environment`, `transaction`, …) or a
    tag name without `tags[...]` / `tags.` around it."""
    op: str
    """"eq" (exact), "contains" (message only, case-insensitive), "glob" (`*` wildcards), "has",
    or a numeric "gt"/"gte"/"lt"/"lte" (`key:>5`)."""
    value: str = ""
    negated: bool = False


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


Predicate = Union[Term, And, Or, None]

LEVELS = ("debug", "info", "warning", "error", "fatal")

# Fields Sentry resolves from the event itself rather than from a tag of that name. Keys not listed
# here are tags (Sentry falls back to tags for unknown keys, which is why `payment_flow:x` works).
_FIELDS = {
    "message", "level", "environment", "transaction", "release", "event.type", "is_transaction",
    "error.type", "error.value", "transaction.status", "platform", "logger", "user.email", "user.id",
}
# Values of these are case-insensitive in Sentry, so they are lower-cased when canonicalised.
_CASE_INSENSITIVE_VALUES = {"message", "level", "event.type", "is_transaction"}
_TAG_BRACKETS = re.compile(r"^tags\[(.+)\]$")


def canonical_key(raw: str) -> str:
    match = _TAG_BRACKETS.match(raw)
    if match:
        return match.group(1)
    if raw.startswith("tags.") and len(raw) > 5:
        return raw[5:]
    return raw


def term(key: str, value: str, negated: bool = False) -> Term:
    """A `key:value` term with Sentry's value semantics: `*` is a wildcard (`\\*` a literal star);
    for `message`, a value without wildcards means "contains"."""
    key = canonical_key(key)
    if key in _CASE_INSENSITIVE_VALUES:
        value = value.lower()
    wildcards = _unescaped_stars(value)
    if not wildcards:
        literal = value.replace("\\*", "*")
        return Term(key, "contains" if key == "message" else "eq", literal, negated)
    inner = value[1:-1]
    if key == "message" and wildcards == [0, len(value) - 1] and inner:
        return Term(key, "contains", inner.replace("\\*", "*"), negated)
    return Term(key, "glob", value, negated)


def has(key: str, negated: bool = False) -> Term:
    return Term(canonical_key(key), "has", "", negated)


def _unescaped_stars(value: str) -> list[int]:
    positions, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            i += 2
            continue
        if value[i] == "*":
            positions.append(i)
        i += 1
    return positions


def _sort_key(node: Predicate) -> tuple:
    if isinstance(node, Term):
        return (0, node.key, node.op, node.value, node.negated)
    return (1 if isinstance(node, And) else 2, tuple(_sort_key(i) for i in node.items))


def all_of(items: Iterable[Predicate]) -> Predicate:
    """Canonical AND: flattened, de-duplicated, sorted; None (match-all) items drop out."""
    return _combine(And, items)


def any_of(items: Iterable[Predicate]) -> Predicate:
    """Canonical OR. An OR with a match-all branch matches everything, so it collapses to None."""
    items = list(items)
    if any(item is None for item in items):
        return None
    return _combine(Or, items)


def _combine(kind: type, items: Iterable[Predicate]) -> Predicate:
    flat: set = set()
    for item in items:
        if item is None:
            continue
        if isinstance(item, kind):
            flat.update(item.items)
        else:
            flat.add(item)
    if not flat:
        return None
    if len(flat) == 1:
        return flat.pop()
    return kind(tuple(sorted(flat, key=_sort_key)))


# --- parsing ---------------------------------------------------------------------------------------

_COMPARISON = re.compile(r"^(>=|<=|>|<)(-?\d+(?:\.\d+)?)$")
_COMPARISON_OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_KEY = re.compile(r'tags\[[^\]\s]+\]|[A-Za-z_@][\w.\-@]*')
_SPACE = re.compile(r"\s+")


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str, pos: int | None = None) -> ValueError:
        at = self.pos if pos is None else pos
        return ValueError(f"query syntax error at position {at}: {message} in {self.text!r}")

    def skip_space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        if match:
            self.pos = match.end()

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.text)

    def peek_operator(self) -> str | None:
        """AND/OR only count as operators when they stand alone (`ORDER:x` is a key)."""
        self.skip_space()
        for word in ("AND", "OR"):
            end = self.pos + len(word)
            if self.text.startswith(word, self.pos) and (
                end == len(self.text) or self.text[end].isspace() or self.text[end] in "()"
            ):
                return word
        return None

    def parse(self) -> Predicate:
        if self.at_end():
            return None
        node = self.parse_or()
        if not self.at_end():
            if self.text[self.pos] == ")":
                raise self.error("unbalanced ')'")
            raise self.error(f"unexpected {self.text[self.pos]!r}")
        return node

    def parse_or(self) -> Predicate:
        branches = [self.parse_and()]
        while self.peek_operator() == "OR":
            self.pos += 2
            branches.append(self.parse_and())
        return any_of(branches)

    def parse_and(self) -> Predicate:
        items = [self.parse_unit()]
        while True:
            operator = self.peek_operator()
            if operator == "OR" or self.at_end() or self.text[self.pos] == ")":
                break
            if operator == "AND":
                self.pos += 3
            items.append(self.parse_unit())
        return all_of(items)

    def parse_unit(self) -> Predicate:
        if self.at_end():
            raise self.error("expected a search term, found the end of the query")
        if self.peek_operator():
            raise self.error(f"expected a search term before {self.peek_operator()}")
        if self.text[self.pos] == "(":
            start = self.pos
            self.pos += 1
            if self.at_end() or self.text[self.pos] == ")":
                raise self.error("empty parentheses" if not self.at_end() else "unclosed '('", start)
            node = self.parse_or()
            if self.at_end() or self.text[self.pos] != ")":
                raise self.error("unclosed '('", start)
            self.pos += 1
            return node
        if self.text[self.pos] == ")":
            raise self.error("unbalanced ')'")
        return self.parse_term()

    def parse_term(self) -> Predicate:
        start = self.pos
        negated = self.text[self.pos] == "!"
        if negated:
            self.pos += 1
        key_match = _KEY.match(self.text, self.pos)
        if key_match and self.text.startswith(":", key_match.end()):
            key = key_match.group(0)
            self.pos = key_match.end() + 1
            if key == "has":
                target = _KEY.match(self.text, self.pos)
                if not target:
                    raise self.error("has: needs a key")
                self.pos = target.end()
                return has(target.group(0), negated)
            return self.parse_values(key, negated)
        if negated:
            raise self.error("'!' must be followed by key:value", start)
        # Free text searches the message, as in Sentry's issue search.
        self.pos = start
        return term("message", self.parse_value())

    def parse_values(self, key: str, negated: bool) -> Predicate:
        if self.pos < len(self.text) and self.text[self.pos] == "[":
            start = self.pos
            self.pos += 1
            values = []
            while True:
                self.skip_space()
                if self.pos >= len(self.text):
                    raise self.error("unclosed '['", start)
                values.append(self.parse_value(stop=",]"))
                self.skip_space()
                if self.pos < len(self.text) and self.text[self.pos] == ",":
                    self.pos += 1
                    continue
                if self.pos < len(self.text) and self.text[self.pos] == "]":
                    self.pos += 1
                    break
                if self.pos >= len(self.text):
                    raise self.error("unclosed '['", start)
                raise self.error("expected ',' or ']' in a list")
            terms = [term(key, value, negated) for value in values]
            # `!k:[a,b]` excludes both values; `k:[a,b]` accepts either.
            return all_of(terms) if negated else any_of(terms)
        value = self.parse_value()
        comparison = _COMPARISON.match(value)
        if comparison and key != "message":
            return Term(canonical_key(key), _COMPARISON_OPS[comparison.group(1)], comparison.group(2),
                        negated)
        return term(key, value, negated)

    def parse_value(self, stop: str = "") -> str:
        if self.pos < len(self.text) and self.text[self.pos] == '"':
            start = self.pos
            self.pos += 1
            chars = []
            while self.pos < len(self.text):
                char = self.text[self.pos]
                if char == "\\" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] == '"':
                    chars.append('"')
                    self.pos += 2
                    continue
                if char == '"':
                    self.pos += 1
                    return "".join(chars)
                chars.append(char)
                self.pos += 1
            raise self.error("unclosed '\"'", start)
        start = self.pos
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char.isspace() or char == ")" or char in stop:
                break
            self.pos += 1
        if self.pos == start:
            raise self.error("expected a value")
        return self.text[start:self.pos]


@functools.lru_cache(maxsize=4096)
def parse(text: str | None) -> Predicate:
    """Parse a search query. Empty → None (matches everything). Bad syntax → ValueError naming
    the position."""
    return _Parser(text or "").parse()


# --- rewriting -------------------------------------------------------------------------------------


def extract_field(pred: Predicate, key: str) -> tuple[frozenset[str] | None, Predicate]:
    """Pull the top-level ANDed positive `key:` terms (single values or lists) out of pred.
    Returns (allowed values or None when unconstrained, the rest)."""
    items = pred.items if isinstance(pred, And) else (pred,)
    allowed: frozenset[str] | None = None
    rest = []
    for item in items:
        values = _values_of(item, key)
        if values is None:
            rest.append(item)
        else:
            allowed = values if allowed is None else allowed & values
    return allowed, all_of(rest)


def _values_of(node: Predicate, key: str) -> frozenset[str] | None:
    if isinstance(node, Term) and node.key == key and node.op == "eq" and not node.negated:
        return frozenset([node.value])
    if isinstance(node, Or) and all(_values_of(item, key) is not None for item in node.items):
        return frozenset(item.value for item in node.items)
    return None


def extract_levels(pred: Predicate) -> tuple[frozenset[str], Predicate]:
    """(levels the query is restricted to — empty for all levels, the rest of the query)."""
    levels, rest = extract_field(pred, "level")
    return (levels or frozenset()), rest


def drop_terms(pred: Predicate, keys: Iterable[str]) -> Predicate:
    """Remove ANDed terms on `keys` (e.g. the `is_transaction:true` span-based alerts add).
    Terms inside an OR stay: dropping them there would change what the OR accepts."""
    keys = set(keys)
    if isinstance(pred, Term):
        return None if pred.key in keys else pred
    if isinstance(pred, And):
        return all_of(drop_terms(item, keys) if isinstance(item, (Term, And)) else item
                      for item in pred.items)
    return pred


def contains_key(pred: Predicate, key: str) -> bool:
    if isinstance(pred, Term):
        return pred.key == key
    return pred is not None and any(contains_key(item, key) for item in pred.items)


# --- rendering -------------------------------------------------------------------------------------

_PLAIN_VALUE = re.compile(r'^[^\s"()\[\],]+$')
_PLAIN_TAG_KEY = re.compile(r"^[A-Za-z_][\w.\-]*$")


def _quote(value: str) -> str:
    if _PLAIN_VALUE.match(value):
        return value
    return '"' + value.replace('"', '\\"') + '"'


def _render_key(key: str) -> str:
    return key if key in _FIELDS or _PLAIN_TAG_KEY.match(key) else f"tags[{key}]"


_RENDER_COMPARISONS = {op: symbol for symbol, op in _COMPARISON_OPS.items()}


def _render_term(node: Term) -> str:
    bang = "!" if node.negated else ""
    if node.op == "has":
        return f"{bang}has:{_render_key(node.key)}"
    if node.op == "contains":
        value = "*" + node.value.replace("*", "\\*") + "*"
    elif node.op == "eq":
        value = node.value.replace("*", "\\*")
    elif node.op in _RENDER_COMPARISONS:
        return f"{bang}{_render_key(node.key)}:{_RENDER_COMPARISONS[node.op]}{node.value}"
    else:
        value = node.value
    return f"{bang}{_render_key(node.key)}:{_quote(value)}"


def render(pred: Predicate) -> str:
    """A readable query string; `k:a OR k:b` is shown as `k:[a,b]`."""
    if pred is None:
        return ""
    if isinstance(pred, Term):
        return _render_term(pred)
    if isinstance(pred, And):
        return " ".join(f"({render(i)})" if isinstance(i, Or) and not _is_list(i) else render(i)
                        for i in pred.items)
    if _is_list(pred):
        key = _render_key(pred.items[0].key)
        return f"{key}:[{','.join(_quote(i.value) for i in pred.items)}]"
    return " OR ".join(render(i) for i in pred.items)


def _is_list(node: Or) -> bool:
    first = node.items[0]
    return all(isinstance(i, Term) and i.op == "eq" and not i.negated and i.key == first.key
               for i in node.items) if isinstance(first, Term) else False


# --- evaluation against an event -------------------------------------------------------------------


class _EventView:
    """Read-only accessors over an ingested event, computing each derived value at most once."""

    __slots__ = ("event", "_tags", "_search_text")

    def __init__(self, event: dict):
        self.event = event
        self._tags: dict[str, str] | None = None
        self._search_text: str | None = None

    @property
    def tags(self) -> dict[str, str]:
        if self._tags is None:
            self._tags = _tags_as_dict(self.event.get("tags"))
        return self._tags

    @property
    def search_text(self) -> str:
        """Sentry's `search_message`: the message plus exception types/values and culprit."""
        if self._search_text is None:
            event = self.event
            parts = [_message(event)]
            for exc in _exceptions(event):
                parts += [str(exc.get("type") or ""), str(exc.get("value") or "")]
            parts.append(str(event.get("culprit") or ""))
            self._search_text = "\n".join(p for p in parts if p).lower()
        return self._search_text

    def values(self, key: str) -> list[str]:
        """Every value the event has for key (several for error.type; none when absent)."""
        event = self.event
        if key == "level":
            return [str(event.get("level") or self.tags.get("level") or "error").lower()]
        if key == "event.type":
            return [_event_type(event)]
        if key == "is_transaction":
            return ["true" if _event_type(event) == "transaction" else "false"]
        if key == "error.type":
            return [str(e["type"]) for e in _exceptions(event) if e.get("type")]
        if key == "error.value":
            return [str(e["value"]) for e in _exceptions(event) if e.get("value")]
        if key == "transaction.status":
            status = ((event.get("contexts") or {}).get("trace") or {}).get("status")
            return [str(status)] if status else []
        if key == "user.email" or key == "user.id":
            value = (event.get("user") or {}).get(key[5:])
            return [str(value)] if value not in (None, "") else []
        if key in self.tags:
            return [self.tags[key]]
        if key in _FIELDS:
            value = event.get(key)
            return [str(value)] if value not in (None, "") else []
        return []


def _tags_as_dict(tags: object) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): _tag_value(v) for k, v in tags.items()}
    out: dict[str, str] = {}
    for item in tags or ():
        if isinstance(item, dict):
            out[str(item.get("key"))] = _tag_value(item.get("value"))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            out[str(item[0])] = _tag_value(item[1])
    return out


def _tag_value(value: object) -> str:
    # Relay stores a JSON boolean tag value as "True"/"False" (LenientString keeps the old Python
    # spelling), so `tags={"test": True}` is found by `test:True`, not by `test:true`.
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def _message(event: dict) -> str:
    message = event.get("message")
    if isinstance(message, dict):  # the SDK's logentry form {"message": ..., "formatted": ...}
        message = message.get("formatted") or message.get("message")
    if not message:
        logentry = event.get("logentry") or {}
        message = logentry.get("formatted") or logentry.get("message")
    return str(message or "")


def _exceptions(event: dict) -> list[dict]:
    exception = event.get("exception")
    if isinstance(exception, dict):
        return [v for v in exception.get("values") or () if isinstance(v, dict)]
    if isinstance(exception, list):
        return [v for v in exception if isinstance(v, dict)]
    return []


def _event_type(event: dict) -> str:
    if event.get("type"):
        return str(event["type"])
    return "error" if _exceptions(event) else "default"


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str, ignore_case: bool) -> re.Pattern:
    parts, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


Matcher = Callable[[_EventView], bool]
_NUMERIC_TESTS = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compile_term(node: Term) -> Matcher:
    key, value = node.key, node.value
    if key == "message":
        if node.op == "contains":
            def positive(view: _EventView) -> bool:
                return value in view.search_text
        elif node.op == "has":
            def positive(view: _EventView) -> bool:
                return bool(view.search_text)
        else:
            regex = _glob_regex(value if node.op == "glob" else value.replace("*", "\\*"), True)
            def positive(view: _EventView) -> bool:
                return any(regex.fullmatch(text) for text in
                           (_message(view.event).lower(), view.search_text))
    elif node.op == "has":
        def positive(view: _EventView) -> bool:
            return any(v != "" for v in view.values(key))
    elif node.op in _NUMERIC_TESTS:
        test, bound = _NUMERIC_TESTS[node.op], _number(value)
        def positive(view: _EventView) -> bool:
            return any(test(n, bound) for n in map(_number, view.values(key)) if n is not None)
    elif node.op == "glob":
        regex = _glob_regex(value, key in _CASE_INSENSITIVE_VALUES)
        def positive(view: _EventView) -> bool:
            return any(regex.fullmatch(v) for v in view.values(key))
    else:
        if key in _CASE_INSENSITIVE_VALUES:
            def positive(view: _EventView) -> bool:
                return any(v.lower() == value for v in view.values(key))
        else:
            def positive(view: _EventView) -> bool:
                return value in view.values(key)
    if node.negated:
        # Sentry's `!k:v` also matches events that lack k entirely.
        return lambda view: not positive(view)
    return positive


@functools.lru_cache(maxsize=2048)
def compile_predicate(pred: Predicate) -> Matcher:
    if pred is None:
        return lambda view: True
    if isinstance(pred, Term):
        return _compile_term(pred)
    children = tuple(compile_predicate(item) for item in pred.items)
    if isinstance(pred, And):
        return lambda view: all(child(view) for child in children)
    return lambda view: any(child(view) for child in children)


def matches(pred: Predicate, event: dict) -> bool:
    """Does the event satisfy pred? Compiled matchers are cached per predicate, so evaluating one
    alert against many events costs one dict walk per term."""
    return compile_predicate(pred)(_EventView(event))


def matcher(pred: Predicate) -> Callable[[dict], bool]:
    """A reusable `event -> bool` for hot loops (sandbox alert engine, backtests)."""
    compiled = compile_predicate(pred)
    return lambda event: compiled(_EventView(event))
