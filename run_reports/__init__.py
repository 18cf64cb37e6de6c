"""Commands that read a run's outputs (sweep CSVs, monitor histories) and write tables and figures.

Every command here is ``python -m reporting.<name> ...``; they share one CSV writer and one figure
helper. This layer may import ``robustness``, ``datamodules``, ``lightning_modules`` and
``tracking``, never ``callbacks`` or ``run.py``.
"""
