"""What the conformance tests share: finding shared/, applying the spec overlays, and turning
OpenAPI 3.0 schemas into JSON Schema for jsonschema."""

from __future__ import annotations

import os
from pathlib import Path

import jsonpatch

REPO = Path(__file__).resolve().parent.parent


def shared_dir(spec_name: str) -> Path | None:
    """shared/ ($PAYMON_SHARED, else beside the checkout) if it holds specs/<spec_name>."""
    for candidate in (os.environ.get("PAYMON_SHARED"), REPO.parent / "shared"):
        if candidate and (Path(candidate) / "specs" / spec_name).is_file():
            return Path(candidate)
    return None


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
