"""paymon.rules.query: one parser for Sentry's search syntax, compared by meaning."""

import pytest

from paymon.rules.query import (
    And,
    Or,
    Term,
    drop_terms,
    extract_levels,
    matcher,
    matches,
    parse,
    render,
)

# --- equal meanings compare equal ------------------------------------------------------------------


@pytest.mark.parametrize(
    "left, right",
    [
        ("payment_flow:checkout OR message:*checkout*", 'message:"*checkout*" OR payment_flow:checkout'),
        ("tags[payment_flow]:checkout", "payment_flow:checkout"),
        ("tags.payment_flow:checkout", "payment_flow:checkout"),
        ('tags.payment_flow:"checkout"', "tags[payment_flow]:checkout"),
        ("message:webhook", 'message:"*webhook*"'),
        ("message:Webhook", "message:*WEBHOOK*"),
        ("a:1 b:2", "a:1 AND b:2"),
        ("a:1 b:2", "b:2 a:1"),
        ("a:1 a:1", "a:1"),
        ("(a:1 OR b:2) OR c:3", "c:3 OR (b:2 OR a:1)"),
        ("level:[error,warning]", "level:warning OR level:error"),
        ("level:[error, warning]", 'level:["warning","error"]'),
        ("((a:1))", "a:1"),
        ("", "   "),
        ("level:ERROR", "level:error"),
    ],
)
def test_equivalent_queries_parse_equal(left, right):
    assert parse(left) == parse(right)
    assert hash(parse(left)) == hash(parse(right))


@pytest.mark.parametrize(
    "left, right",
    [
        ("a:1 OR b:2 c:3", "(a:1 OR b:2) c:3"),   # AND binds tighter than OR
        ("payment_flow:checkout", "payment_flow:Checkout"),  # tag values are exact
        ("a:1", "!a:1"),
        ("message:*a*", "message:a*"),
        ("has:a", "a:1"),
    ],
)
def test_different_meanings_parse_different(left, right):
    assert parse(left) != parse(right)


def test_and_binds_tighter_than_or():
    assert parse("a:1 OR b:2 c:3") == Or((Term("a", "eq", "1"), And((Term("b", "eq", "2"), Term("c", "eq", "3")))))


def test_term_shapes():
    assert parse('message:"*Usage reporting failed*"') == Term("message", "contains", "usage reporting failed")
    assert parse("transaction:/api/*") == Term("transaction", "glob", "/api/*")
    assert parse("!payment_flow:test") == Term("payment_flow", "eq", "test", negated=True)
    assert parse("has:reconciliation") == Term("reconciliation", "has")
    assert parse("!has:user") == Term("user", "has", negated=True)
    assert parse("!level:[info,debug]") == And((Term("level", "eq", "debug", True), Term("level", "eq", "info", True)))
    assert parse("count:>5") == Term("count", "gt", "5")
    assert parse("Invalid signature") == And((Term("message", "contains", "invalid"),
                                             Term("message", "contains", "signature")))
    assert parse('message:"say \\"hi\\""') == Term("message", "contains", 'say "hi"')
    assert parse("ORDER:x") == Term("ORDER", "eq", "x")  # OR only counts as a whole word


def test_empty_query_matches_everything():
    assert parse("") is None
    assert parse(None) is None
    assert matches(None, {"message": "anything"})


@pytest.mark.parametrize(
    "text, position, problem",
    [
        ("(a:1", 0, "unclosed '('"),
        ("a:1)", 3, "unbalanced ')'"),
        ("a:1 OR", 6, "expected a search term"),
        ("OR a:1", 0, "before OR"),
        ("a:1 AND OR b:2", 8, "before OR"),
        ("()", 0, "empty parentheses"),
        ('a:"x', 2, "unclosed '\"'"),
        ("k:[a,b", 2, "unclosed '['"),
        ("!(a:1)", 0, "'!' must be followed by key:value"),
        ("has:", 4, "has: needs a key"),
    ],
)
def test_syntax_errors_name_the_position(text, position, problem):
    with pytest.raises(ValueError) as excinfo:
        parse(text)
    message = str(excinfo.value)
    assert f"position {position}" in message and problem in message and repr(text) in message


# --- rendering -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "payment_flow:checkout OR message:*checkout* OR message:*payment*",
        'level:warning (message:"*Invalid webhook signature*" OR message:"*signature verification failed*")',
        "level:[error,warning] (reconciliation:true OR has:reconciliation)",
        "a:1 b:2 OR c:3 !d:4",
        'tags[odd key]:"a b"',
        "transaction:/api/* !transaction:/api/health count:>=3",
    ],
)
def test_render_reads_back_to_the_same_predicate(text):
    assert parse(render(parse(text))) == parse(text)


def test_render_is_readable():
    assert render(parse("level:warning OR level:error")) == "level:[error,warning]"
    assert render(parse("x:1 (a:1 OR b:2)")) == "x:1 (a:1 OR b:2)"
    assert render(parse('message:"Usage reporting failed"')) == 'message:"*usage reporting failed*"'
    assert render(None) == ""


# --- rewriting -------------------------------------------------------------------------------------


def test_extract_levels_takes_only_top_level_and_terms():
    levels, rest = extract_levels(parse("level:warning (message:a OR message:b)"))
    assert levels == {"warning"} and rest == parse("message:a OR message:b")
    levels, rest = extract_levels(parse("level:[error,warning] reconciliation:true"))
    assert levels == {"error", "warning"} and rest == parse("reconciliation:true")
    assert extract_levels(parse("level:fatal")) == (frozenset({"fatal"}), None)
    # A level inside an OR widens rather than restricts: it stays in the filter.
    levels, rest = extract_levels(parse("level:fatal OR message:x"))
    assert levels == frozenset() and rest == parse("level:fatal OR message:x")
    levels, rest = extract_levels(parse("!level:info a:1"))
    assert levels == frozenset() and rest == parse("!level:info a:1")


def test_drop_terms_removes_anded_terms_only():
    assert drop_terms(parse("is_transaction:true transaction:/a"), {"is_transaction"}) == parse("transaction:/a")
    assert drop_terms(parse("is_transaction:true"), {"is_transaction"}) is None
    assert drop_terms(parse("is_transaction:true OR a:1"), {"is_transaction"}) == parse("is_transaction:true OR a:1")


# --- evaluation against events ---------------------------------------------------------------------

CHECKOUT_ERROR = {
    "type": "error",
    "level": "error",
    "environment": "production",
    "transaction": "/api/checkout/pro",
    "tags": {"payment_flow": "checkout", "environment": "production"},
    "exception": {"values": [{"type": "LemonSqueezyError", "value": "Payment declined by gateway"}]},
}
WARNING_MESSAGE = {
    "message": "Invalid webhook SIGNATURE from 1.2.3.4",
    "level": "warning",
    "tags": [["webhook", "true"], ["cron", "nightly"]],
}
API_EVENT = {  # what `GET P/events/{id}/` returns: tags as {key, value}, type given
    "type": "default",
    "message": "Reconciliation discrepancies detected: 3",
    "tags": [{"key": "level", "value": "error"}, {"key": "reconciliation", "value": "true"}],
}


@pytest.mark.parametrize(
    "query, event, expected",
    [
        ("payment_flow:checkout", CHECKOUT_ERROR, True),
        ("tags[payment_flow]:checkout", CHECKOUT_ERROR, True),
        ("payment_flow:Checkout", CHECKOUT_ERROR, False),
        ("message:payment", CHECKOUT_ERROR, True),                  # exception value is searched
        ("message:lemonsqueezyerror", CHECKOUT_ERROR, True),        # so is the exception type
        ('message:"*invalid webhook signature*"', WARNING_MESSAGE, True),
        ("message:nothing-like-this", WARNING_MESSAGE, False),
        ("webhook:true", WARNING_MESSAGE, True),
        ("cron:webhook OR webhook:true OR message:webhook", WARNING_MESSAGE, True),
        ("level:warning", WARNING_MESSAGE, True),
        ("level:[error,fatal]", WARNING_MESSAGE, False),
        ("level:error", {"message": "no level given"}, True),       # Sentry's default level
        ("level:error", API_EVENT, True),                           # level from the tag list
        ("reconciliation:true message:\"*discrepancies detected*\"", API_EVENT, True),
        ("event.type:default", API_EVENT, True),
        ("event.type:error", CHECKOUT_ERROR, True),
        ("event.type:default", {"message": "captureMessage"}, True),
        ("event.type:error", {"exception": {"values": [{"type": "E"}]}}, True),
        ("!payment_flow:test", WARNING_MESSAGE, True),              # missing tag passes a negation
        ("!payment_flow:checkout", CHECKOUT_ERROR, False),
        ("has:payment_flow", CHECKOUT_ERROR, True),
        ("has:payment_flow", WARNING_MESSAGE, False),
        ("!has:payment_flow", WARNING_MESSAGE, True),
        ("transaction:/api/checkout/*", CHECKOUT_ERROR, True),
        ("transaction:/api/checkout", CHECKOUT_ERROR, False),
        ("environment:production", CHECKOUT_ERROR, True),
        ("environment:staging", CHECKOUT_ERROR, False),
        ("error.type:LemonSqueezyError", CHECKOUT_ERROR, True),
        ("level:fatal message:\"Test mode detected in production\"",
         {"level": "fatal", "message": "Test mode detected in production!"}, True),
        ("level:fatal message:\"Test mode detected in production\"",
         {"level": "error", "message": "Test mode detected in production!"}, False),
        ("test:True", {"message": "x", "tags": {"test": True}}, True),  # Relay's bool spelling
        ("count:>5", {"tags": {"count": "7"}}, True),
        ("count:>5", {"tags": {"count": "5"}}, False),
    ],
)
def test_matches(query, event, expected):
    assert matches(parse(query), event) is expected


def test_logentry_form_of_message_is_searched():
    event = {"logentry": {"message": "Usage reporting failed for %s", "formatted": "Usage reporting failed for 42"}}
    assert matches(parse('message:"*Usage reporting failed*"'), event)


def test_matcher_is_reusable_over_many_events():
    is_webhook = matcher(parse("cron:webhook OR webhook:true OR message:webhook"))
    events = [{"message": f"event {i}", "tags": {"webhook": "true" if i % 3 == 0 else "false"}}
              for i in range(3000)]
    assert sum(map(is_webhook, events)) == 1000
