"""Run profiles: what one run checks, and what it may do to production (monitoring.yaml `profiles:`).

A pipeline chooses a profile (`--profile` / `PAYMON_PROFILE`): the pre-deployment `gate`, the
scheduled `synthetic` run, the announced `drill`, the `post-deploy` watch, the weekly `review`.
Each names the check areas it runs and its allowance: the test events, checkouts, signed
webhooks, PagerDuty incidents and pages one run may cause. Pages to people are allowed only
within declared hours and a daily count; checkouts come out of one daily budget shared by every
run of every profile (`budgets`). What a run actually costs is computed from the same numbers
the run uses (paymon.delivery.actions), so the allowance is checked against it, not trusted.

The built-in `sandbox` profile (everything, no allowance) is what a plain `pytest` runs against
the sandbox; it is refused against live services.
"""

from __future__ import annotations

from datetime import datetime, time as clock_time, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Area = Literal["configuration", "delivery", "drill", "endpoints", "production-health", "reviews", "post-deploy"]
AREAS: tuple[str, ...] = Area.__args__
"""Every check belongs to one area (its `area` marker; unmarked checks are `configuration`)."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = Weekday.__args__

SANDBOX_PROFILE = "sandbox"
ACTIONS = ("test_events", "checkouts", "signed_webhooks", "incidents", "pages")
"""What a run may do to production, in the order the README's cost table lists them."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Allowance(_Model):
    """What one run of a profile may do to production at most."""

    test_events: int = Field(default=0, ge=0)
    checkouts: int = Field(default=0, ge=0)
    signed_webhooks: int = Field(default=0, ge=0)
    incidents: int = Field(default=0, ge=0)
    """PagerDuty incidents opened (the synthetic one is low urgency: nobody is notified at once)."""
    pages: int = Field(default=0, ge=0)
    """High-urgency incidents that notify a person: only a drill or an explicit page test."""


class PagingHours(_Model):
    """When a profile may page people: declared working hours, in the on-call team's time zone."""

    days: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1)
    start: str = "10:00"
    end: str = "16:00"
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        try:
            clock_time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected a time of day like 10:00, got {value!r}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name like Europe/London)") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "PagingHours":
        if clock_time.fromisoformat(self.start) >= clock_time.fromisoformat(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self

    def allows(self, epoch_seconds: float) -> bool:
        local = datetime.fromtimestamp(epoch_seconds, timezone.utc).astimezone(ZoneInfo(self.timezone))
        if WEEKDAYS[local.weekday()] not in self.days:
            return False
        return clock_time.fromisoformat(self.start) <= local.time() < clock_time.fromisoformat(self.end)

    def describe(self) -> str:
        days = f"{self.days[0].title()}–{self.days[-1].title()}" if len(self.days) > 1 else self.days[0].title()
        return f"{days} {self.start}–{self.end} {self.timezone}"


class Profile(_Model):
    description: str
    areas: list[Area] = Field(min_length=1)
    runs_per_day: float = Field(gt=0)
    """How often the pipeline runs this profile on a busy day: the daily budget is checked against it."""
    probe_samples: int = Field(default=0, ge=0)
    """Live latency-probe requests per payment endpoint per run (the canary; pooled across runs)."""
    may: Allowance = Field(default_factory=Allowance)
    paging_hours: PagingHours | None = None

    @model_validator(mode="after")
    def _paging_declared(self) -> "Profile":
        if self.may.pages and self.paging_hours is None:
            raise ValueError("may.pages needs paging_hours: a profile that pages people says when it may")
        if "endpoints" in self.areas and not self.probe_samples:
            raise ValueError("the endpoints area needs probe_samples (at least 1)")
        return self


class Budgets(_Model):
    """Shared by every live run of every profile, per UTC day."""

    checkouts_per_day: int = Field(ge=0)
    pages_per_day: int = Field(ge=0)


class ProfilesSpec(_Model):
    default: str = "gate"
    """The profile of a live run that names none."""
    budgets: Budgets
    profiles: dict[str, Profile] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> "ProfilesSpec":
        if SANDBOX_PROFILE in self.profiles:
            raise ValueError(f"{SANDBOX_PROFILE!r} is built in (the whole suite against the sandbox); pick another name")
        if self.default not in self.profiles:
            raise ValueError(f"default: {self.default!r} is not one of the profiles ({', '.join(self.profiles)})")
        paging_per_day = sum(p.runs_per_day * p.may.pages for p in self.profiles.values())
        if paging_per_day > self.budgets.pages_per_day:
            raise ValueError(f"the profiles may page {paging_per_day:g} times a day (runs_per_day x may.pages), "
                             f"over budgets.pages_per_day {self.budgets.pages_per_day}")
        return self

    def names(self) -> list[str]:
        return [*self.profiles, SANDBOX_PROFILE]

    def get(self, name: str) -> Profile:
        if name == SANDBOX_PROFILE:
            return SANDBOX
        return self.profiles[name]

    def running(self, area: str) -> list[str]:
        """The declared profiles that run an area (the verdict names them for what it did not run)."""
        return [name for name, p in self.profiles.items() if area in p.areas]


SANDBOX = Profile(description="the whole suite against the built-in sandbox (paymon's own proof; never live)",
                  areas=[a for a in AREAS if a != "reviews"], runs_per_day=1, probe_samples=120)
"""The reviews read weeks of history (seconds): `--reviews` adds them, as to any profile."""
