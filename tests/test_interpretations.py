"""Values monitoring.yaml pins that the guide does not give (issue 15 item 6): a mismatch warns,
naming the interpretation, unless the file marks it required; unknown keys are refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fixtures.outcome import InterpretationWarning, fail_or_warn_interpretations
from paymon.config.spec import load_spec
from paymon.errors import ConfigError
from paymon.findings.model import Finding
from tests.conftest import REPO

WINDOW = Finding("Checkout p95 Latency (/api/checkout/pro)", "window", "600s", "900s", "field", "detector 1")
THRESHOLD = Finding("Checkout p95 Latency (/api/checkout/pro)", "critical threshold", "1000", "2000", "field", "x")
CONCERNS = {"performance.window": lambda f: f.field == "window"}


def _request():
    return SimpleNamespace(node=SimpleNamespace(user_properties=[]))


def _spec(tmp_path, required: bool):
    text = (REPO / "monitoring.yaml").read_text()
    old = "  performance.window:\n    says:"
    assert old in text
    text = text.replace(old, f"  performance.window:\n    required: {str(required).lower()}\n    says:", 1)
    path = tmp_path / "monitoring.yaml"
    path.write_text(text)
    return load_spec(path)


def test_a_mismatch_of_an_interpretation_warns_naming_it(tmp_path):
    request = _request()
    with pytest.warns(InterpretationWarning, match="performance.window is paymon's interpretation .*10 minutes"):
        fail_or_warn_interpretations(request, _spec(tmp_path, required=False), [WINDOW], CONCERNS)
    assert ("verdict", "warning") in request.node.user_properties
    assert ("interpretation", "performance.window") in request.node.user_properties


def test_required_makes_it_fail_like_the_guides_own_values(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="window expected 600s, actual 900s"):
        fail_or_warn_interpretations(_request(), _spec(tmp_path, required=True), [WINDOW], CONCERNS)


def test_the_guides_values_still_fail_beside_a_warning(tmp_path):
    with pytest.raises(pytest.fail.Exception) as failed:
        fail_or_warn_interpretations(_request(), _spec(tmp_path, required=False), [WINDOW, THRESHOLD], CONCERNS)
    assert "critical threshold" in str(failed.value) and "window" not in str(failed.value).split("\n")[0]


def test_an_unknown_interpretation_key_is_one_line(tmp_path):
    text = (REPO / "monitoring.yaml").read_text().replace("  performance.window:\n", "  performance.windw:\n", 1)
    path = tmp_path / "monitoring.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="interpretations: unknown key 'performance.windw'"):
        load_spec(path)
