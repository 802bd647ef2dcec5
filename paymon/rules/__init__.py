"""One model of an alert, whichever generation of Sentry's alerting API it came from:

    model.py      Alert, Action, thresholds, windows (resolved names)
    query.py      Sentry's search syntax, parsed and compared by meaning
    normalise.py  legacy issue / metric alert rules and detectors + workflows into `Alert`
    names.py      how an alert's name is matched, by every reader
    semantics.py  when an alert fires (shared by the sandbox's engine and the backtest's replay)

No I/O. May import: paymon.errors, paymon.config.
"""
