"""paymon's error tree.

    PaymonError                 everything paymon raises on purpose; str() is one readable line
    ├── ConfigError             monitoring.yaml (or a world file) is missing or malformed
    ├── SettingsError           a required setting (token, org, base URL) is missing
    ├── TargetUnavailable       a service could not be asked: the check "could not check"
    │   ├── AuthError           401/403: the token is wrong or lacks a scope
    │   ├── EndpointMissing     404/410 on an endpoint or object
    │   └── ServiceError        5xx, 429 or a network failure that outlived the retries
    └── WriteRejected           400/409 on a write: the server refused the change (field errors)

A failed criterion is not an exception of this tree: checks report it with an assertion naming
alert, field, expected and actual. TargetUnavailable means the criterion could not be judged; the
gate fails on it too, with that reason, and never skips.
"""

from __future__ import annotations


class PaymonError(Exception):
    """Base class; the message is meant to be shown as one line."""


class ConfigError(PaymonError):
    pass


class SettingsError(PaymonError):
    pass


class TargetUnavailable(PaymonError):
    pass


class AuthError(TargetUnavailable):
    pass


class EndpointMissing(TargetUnavailable):
    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.status = status


class ServiceError(TargetUnavailable):
    pass


class WriteRejected(PaymonError):
    """A create/update the server refused (400 with DRF field errors, 409 conflict)."""

    def __init__(self, message: str, status: int = 400, errors: dict | None = None):
        super().__init__(message)
        self.status = status
        self.errors = errors or {}
