"""Commands that read a run's outputs (sweep CSVs, monitor histories) and write tables and figures.

Every command here is ``python -m run_reports.<name> ...``; they share one CSV writer and one figure
helper. Nothing a run calls while it trains lives here (that is ``run_outputs``): this layer sits above
``callbacks`` and ``run_cli`` and below ``studies``, which calls its commands for a study's report.
"""
