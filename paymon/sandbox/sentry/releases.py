"""Releases and their deploys, as Sentry records them (verified-2026-12.md §7; the 2026-08 spec's
`listOrganizationReleases` / `listOrganizationReleaseDeploys`).

    GET O/releases/?project=&environment=&query=   the organisation's releases, newest first
    GET O/releases/{version}/deploys/?project=     one release's deploys, by -dateFinished

What the emulator follows, and where it is read:

* No org-wide deploy list exists: the latest deploy to an environment is found by listing the
  releases of that environment and reading each one's deploys (§7, inference from
  `release_deploys.py` and the release serializer's `lastDeploy` / `deployCount`).
* Releases are ordered by `COALESCE(date_released, date_added)` descending (the `date` sort,
  `OrganizationReleasesEndpoint`), and `environment=` keeps the releases that have a
  ReleaseProjectEnvironment there — here: a deploy to it (events tagged with a release would add
  one too; the sandbox's events do not create releases).
* Deploys: the newest code returns only the last deploy per (project, environment) of the release
  (`ReleaseProjectEnvironment.last_deploy_id`); older servers listed every deploy. Knob
  `deploys_listing`: "last_per_environment" (default, the newest code) or "all".
* `lastDeploy` on a release is its latest deploy in any environment; `deployCount` counts them all.

World shape (`world["sentry"]["releases"]`, `worlds/releases.json`): the release fields the API
serves, with `projects` as slugs and `deploys` as a list of deploy objects (`id`, `environment`,
`dateStarted`, `dateFinished`, `name`, `url`, and `projects`: slugs, default the release's). Deploys
that happened relative to the sandbox's clock (the payment app's deploy history) are recorded at
start with `record_deploy`, as the app's CI would with `sentry-cli releases deploys new`.
"""

from __future__ import annotations

import copy
import threading

from paymon.sandbox.sentry import ingest
from paymon.sandbox.sentry.exceptions import ResourceDoesNotExist

LAST_PER_ENVIRONMENT, ALL = "last_per_environment", "all"
DEPLOYS_LISTINGS = (LAST_PER_ENVIRONMENT, ALL)


def _parse(text: str) -> float:
    from datetime import datetime, timezone

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


class ReleaseStore:
    """The organisation's releases (version -> release record, times as epoch seconds)."""

    def __init__(self, world_releases: list[dict], projects: list[dict], *, listing: str = LAST_PER_ENVIRONMENT):
        if listing not in DEPLOYS_LISTINGS:
            raise ValueError(f"sentry knob deploys_listing: expected one of {', '.join(DEPLOYS_LISTINGS)}, "
                             f"got {listing!r}")
        self.listing = listing
        self._projects = projects
        self._lock = threading.Lock()
        self._releases: dict[str, dict] = {}
        self._next_id = 1000
        self._next_deploy_id = 1
        for release in copy.deepcopy(world_releases or []):
            deploys = release.pop("deploys", [])
            record = self._new_release(release["version"], _parse(release["dateCreated"]),
                                       release.get("projects") or [p["slug"] for p in projects], release)
            for deploy in deploys:
                self._add_deploy(record, deploy["environment"], _parse(deploy["dateFinished"]),
                                 started=_parse(deploy["dateStarted"]) if deploy.get("dateStarted") else None,
                                 name=deploy.get("name"), url=deploy.get("url"), projects=deploy.get("projects"),
                                 deploy_id=deploy.get("id"))

    # --- state -----------------------------------------------------------------------------------

    def _new_release(self, version: str, created: float, projects: list[str], fields: dict | None = None) -> dict:
        fields = fields or {}
        self._next_id += 1
        record = {"id": int(fields.get("id") or self._next_id), "version": version, "created": created,
                  "released": _parse(fields["dateReleased"]) if fields.get("dateReleased") else None,
                  "ref": fields.get("ref"), "url": fields.get("url"), "projects": list(projects), "deploys": []}
        self._releases[version] = record
        return record

    def _add_deploy(self, release: dict, environment: str, finished: float, *, started: float | None = None,
                    name: str | None = None, url: str | None = None, projects: list[str] | None = None,
                    deploy_id: str | None = None) -> dict:
        if deploy_id is None:
            deploy_id = str(self._next_deploy_id)
        self._next_deploy_id = max(self._next_deploy_id, int(deploy_id) + 1)
        deploy = {"id": str(deploy_id), "environment": environment, "started": started, "finished": finished,
                  "name": name, "url": url, "projects": list(projects or release["projects"])}
        release["deploys"].append(deploy)
        return deploy

    def record_deploy(self, version: str, environment: str, finished: float, *, started: float | None = None,
                      name: str | None = None, url: str | None = None, projects: list[str] | None = None) -> dict:
        """`POST O/releases/` (if the release is new; created a few minutes before the deploy, as a CI
        pipeline creates it at build time) then `POST O/releases/{version}/deploys/`."""
        with self._lock:
            release = self._releases.get(version)
            if release is None:
                release = self._new_release(version, (started or finished) - 600,
                                            projects or [p["slug"] for p in self._projects])
            return self._add_deploy(release, environment, finished, started=started, name=name, url=url,
                                    projects=projects)

    def remove_deploys(self, environment: str) -> int:
        """Forget every deploy to `environment` (tests)."""
        with self._lock:
            removed = 0
            for release in self._releases.values():
                kept = [d for d in release["deploys"] if d["environment"] != environment]
                removed += len(release["deploys"]) - len(kept)
                release["deploys"] = kept
            return removed

    # --- reads -----------------------------------------------------------------------------------

    def list_releases(self, projects: list[dict], environments: list[str], query: str = "") -> list[dict]:
        slugs = {p["slug"] for p in projects}
        found = [r for r in self._releases.values() if slugs & set(r["projects"])]
        if environments:
            found = [r for r in found if any(d["environment"] in environments and slugs & set(d["projects"])
                                             for d in r["deploys"])]
        if query:  # the `query` parameter: "version prefix" search (`version:<query>*`, case-insensitive)
            found = [r for r in found if r["version"].casefold().startswith(query.casefold())]
        found.sort(key=lambda r: (-(r["released"] or r["created"]), -r["id"]))
        return [self._serialize_release(r, slugs) for r in found]

    def list_deploys(self, version: str, projects: list[dict]) -> list[dict]:
        release = self._releases.get(version)
        slugs = {p["slug"] for p in projects}
        if release is None or not slugs & set(release["projects"]):
            raise ResourceDoesNotExist()
        deploys = [d for d in release["deploys"] if slugs & set(d["projects"])]
        if self.listing == LAST_PER_ENVIRONMENT:
            # ReleaseProjectEnvironment.last_deploy_id: one deploy per (project, environment).
            last: dict[tuple[str, str], dict] = {}
            for deploy in deploys:
                for slug in slugs & set(deploy["projects"]):
                    key = (slug, deploy["environment"])
                    if key not in last or deploy["finished"] >= last[key]["finished"]:
                        last[key] = deploy
            deploys = list({id(d): d for d in last.values()}.values())
        deploys.sort(key=lambda d: (-d["finished"], -int(d["id"])))
        return [_serialize_deploy(d) for d in deploys]

    def _serialize_release(self, release: dict, slugs: set[str]) -> dict:
        # ReleaseSerializer (the list's fields); the health data is not emulated.
        deploys = sorted(release["deploys"], key=lambda d: d["finished"])
        version = release["version"]
        package, _, short = version.partition("@")
        return {
            "id": release["id"], "version": version, "shortVersion": short or version, "status": "open",
            "ref": release["ref"], "url": release["url"],
            "dateReleased": ingest.iso(release["released"]), "dateCreated": ingest.iso(release["created"]),
            "dateStarted": None, "owner": None, "lastCommit": None,
            "lastDeploy": _serialize_deploy(deploys[-1]) if deploys else None,
            "firstEvent": None, "lastEvent": None, "currentProjectMeta": {}, "userAgent": None,
            "adoptionStages": {}, "newGroups": 0,
            "versionInfo": {"package": package if short else None,
                            "version": {"raw": short or version}, "description": short or version,
                            "buildHash": None},
            "data": {}, "commitCount": 0, "deployCount": len(deploys), "authors": [],
            "projects": [{"id": int(p["id"]), "slug": p["slug"], "name": p.get("name") or p["slug"],
                          "platform": p.get("platform"), "platforms": [p["platform"]] if p.get("platform") else [],
                          "hasHealthData": False, "newGroups": 0, "healthData": None,
                          "dateReleased": ingest.iso(release["released"]),
                          "dateCreated": ingest.iso(release["created"]), "dateStarted": None}
                         for p in self._projects if p["slug"] in release["projects"]],
        }


def _serialize_deploy(deploy: dict) -> dict:
    # DeploySerializer: id as a string, dates ISO, name/url nullable.
    return {"id": deploy["id"], "environment": deploy["environment"],
            "dateStarted": ingest.iso(deploy["started"]), "dateFinished": ingest.iso(deploy["finished"]),
            "name": deploy["name"], "url": deploy["url"]}


class ReleaseResponses:
    """The HTTP handlers (mixed into SentryResponse): `self.backend.releases` is the store."""

    def list_releases(self, call) -> list:
        projects = self._projects(call, call.values("project"))
        return self.backend.releases.list_releases(projects, call.values("environment"),
                                                   (call.params.get("query") or "").strip())

    def list_release_deploys(self, call) -> list:
        projects = self._projects(call, call.values("project"))
        return self.backend.releases.list_deploys(call.path_params["version"], projects)
