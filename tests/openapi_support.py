"""What the conformance tests share: the official API specs and paymon's corrections to them, both
kept in the repository under tests/apis/ (see tests/apis/README.md), applying those overlays, and
turning OpenAPI 3.0 schemas into JSON Schema for jsonschema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonpatch

APIS = Path(__file__).resolve().parent / "apis"
SPECS = APIS / "specs"
OVERLAYS = APIS / "overlays"
EXAMPLES = APIS / "examples"


def missing_specs(*spec_names: str) -> str | None:
    """Why the specs cannot be loaded (a message naming the absent files), or None when all are there.

    The conformance tests fail with this message (never skip): conformance that was not checked must
    not look green."""
    absent = [name for name in spec_names if not (SPECS / name).is_file()]
    if not absent:
        return None
    return (f"API spec missing from the repository: {', '.join(str(SPECS / n) for n in absent)} "
            f"(they are committed under tests/apis/specs/, see tests/apis/README.md; "
            f"`git checkout -- tests/apis` restores them)")


def load_spec(spec_name: str, overlay: bool = True) -> dict:
    """tests/apis/specs/<spec_name>, corrected with tests/apis/overlays/<stem>.overlay.json (which must
    exist unless `overlay` is False: every spec but the PagerDuty Events one has corrections)."""
    spec = json.loads((SPECS / spec_name).read_text())
    if overlay:
        corrections = OVERLAYS / spec_name.replace(".json", ".overlay.json")
        if not corrections.is_file():
            raise FileNotFoundError(f"spec overlay missing from the repository: {corrections}")
        apply_patches(spec, json.loads(corrections.read_text())["patches"])
    return spec


def apply_patches(spec: dict, patches: list[dict]) -> None:
    """Apply RFC 6902 patches (the overlays' `why` notes aside) to `spec`, in place, in order."""
    operations = [{k: v for k, v in patch.items() if k != "why"} for patch in patches]
    try:
        jsonpatch.apply_patch(spec, operations, in_place=True)
    except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException) as exc:
        raise KeyError(f"overlay does not fit the spec: {exc}") from None
    except jsonpatch.InvalidJsonPatch as exc:
        raise ValueError(f"unsupported overlay op: {exc}") from None


def to_jsonschema(node):
    """OpenAPI 3.0 schema -> JSON Schema draft 7 (`nullable` becomes a null-able type)."""
    if isinstance(node, list):
        return [to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_jsonschema(v) for k, v in node.items()
           if k not in ("nullable", "discriminator", "example", "xml", "externalDocs")}
    if node.get("nullable") is True:
        if "type" in out and "$ref" not in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = list(dict.fromkeys(types + ["null"]))
            if "enum" in out and None not in out["enum"]:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out
