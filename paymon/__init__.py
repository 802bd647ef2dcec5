"""paymon: proves that a payment system's monitoring really works.

Its packages, in the order a run goes through them (ARCHITECTURE.md draws the arrows):

    errors.py   the error tree every stage raises (could not check, bad input, ...)
    config/     what a run expects and where it points: monitoring.yaml, settings, target
    clients/    the services' web APIs (Sentry, Slack, PagerDuty) and the per-run read cache
    rules/      one alert model: search syntax, both alerting generations, firing semantics
    findings/   what was read vs what monitoring.yaml expects, as one-line findings
    delivery/   fire test events through the real rules, read them back, drill, clean up
    probes/     timed requests against the payment app, p95 judged against a budget
    reviews/    backtest and the guide's scheduled reviews
    remedy/     `paymon plan` / `paymon apply`: make Sentry match monitoring.yaml
    reporting/  the verdict, Allure results, charts, the report and the weekly page

Beside the run: sandbox/ (the offline stand-ins for the services). The edges: cli/ (the `paymon`
command) and, outside this package, fixtures/ (the pytest plugin). Each package imports only
those listed before it; only the edges import the sandbox.

PYTEST_DONT_REWRITE: the library is not test code. pytest marks every package of a distribution
with a pytest11 entry point (paymon's plugin) for assertion rewriting, and warns when one was
imported before it starts, as tests/forked_pytest.py's preloaded server imports this one.
"""

__version__ = "0.1.0"
