"""What a paymon run leaves behind for people: the verdict, the Allure results, the HTML report.

    verdict.py        guide criterion by criterion: pass / warning / fail / could not check, exit code
    guide.py          where a check sits in the guide (epic, feature) and how severe its failure is
    config_diff.py    a check's failure message back into rows (alert, field, expected, actual)
    secrets.py        keeping tokens out of every file paymon writes
    results_files.py  environment.properties and categories.json for the Allure results directory
    allure_report.py  `paymon report`: the HTML report with Allure 3, history carried between runs
    weekly.py         the weekly review page from stored run summaries
    attachments.py, charts.py, timeline.py, measurements.py   what a check attaches and records
    review_plots.py, review_attach.py                        the reviews' plots and tables
    post_deploy_charts.py                                    the post-deployment watch's table and chart

The pytest side (hooks) lives in fixtures/reporting.py; these modules know nothing of pytest.
May import: paymon.errors, config, clients, rules, findings, delivery, probes, reviews (never remedy).
"""
