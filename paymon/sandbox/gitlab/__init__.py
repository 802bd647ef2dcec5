"""The emulated GitLab, as much as paymon reads of it: a project's file through the repository files
API's raw endpoint, where the operations runbook (§6) lives. Served under `/gitlab`.

    GET /api/v4/projects/:id/repository/files/:file_path/raw?ref=main
        (docs.gitlab.com/api/repository_files/#get-raw-file-from-repository)

`SERVICE` is the entry for `paymon.sandbox.server.SERVICES`.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

from paymon.sandbox.core import Service
from paymon.sandbox.gitlab.models import GitLabBackend, build_gitlab_app

__all__ = ["SERVICE", "GitLabBackend", "build_gitlab_app", "golden_gitlab_world"]

_WORLDS = Path(__file__).resolve().parent.parent / "worlds"


@cache
def _golden() -> dict:
    world = json.loads((_WORLDS / "gitlab.json").read_text())
    for project in world["projects"]:
        for file in project["files"].values():
            if "content_file" in file:  # kept beside the world as markdown, to be readable
                file["content"] = (_WORLDS / file.pop("content_file")).read_text(encoding="utf-8")
    return world


def golden_gitlab_world() -> dict:
    """`world["gitlab"]`: the private project holding the runbook (docs/payment-monitoring.md),
    reviewed 12 days before the sandbox's start, and the read token paymon is given."""
    return copy.deepcopy(_golden())


SERVICE = Service("/gitlab", lambda part, hub: GitLabBackend(part, hub=hub), build_gitlab_app)
