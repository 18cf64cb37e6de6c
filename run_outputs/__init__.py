"""The files a run writes about itself while it trains and tests, called by the callbacks and ``run.py``.

- ``sweeps.py``: a sweep's summary CSV and figure, the sensitivity-over-training table and figures.
- ``group_files.py``: the same for a layer-wise sweep (one group of layers damaged at a time).
- ``slope_figures.py``: figures of the robustness slope R(T) against T.
- ``run_summary.py``: the end-of-run summary printed for a person.

The commands that read these outputs afterwards live in ``run_reports``, above this package.
"""
