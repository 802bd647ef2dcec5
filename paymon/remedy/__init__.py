"""From verification to remedy: `paymon plan` / `paymon apply` make Sentry match monitoring.yaml.

    resolve.py           names → ids (Slack channel, PagerDuty service row, team/member)
    filters.py           a query predicate → an issue alert's flat filter list (or why not)
    render_workflow.py   detector and workflow bodies        render_legacy.py   legacy rule bodies
    render_dashboard.py  dashboard and cron monitor bodies
    planner.py           the plan, from the checks' own reads and comparison
    delivery_path.py     integration, Slack and PagerDuty problems apply cannot fix
    model.py             Write / Change / Plan and the plan's text
    apply.py             perform a plan, log every write, account for a failure part-way

The commands are in paymon.cli.remedy.
May import: paymon.errors, config, clients, rules, findings.
"""
