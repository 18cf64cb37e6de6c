"""Studies: a grid of ``run.py`` runs declared in one file, launched through submitit, resumed, reported as one.

    python -m studies launch configs/studies/gpt2_tiny_scaling.yaml --max-parallel 2
    python -m studies status configs/studies/gpt2_tiny_scaling.yaml
    python -m studies report configs/studies/gpt2_tiny_scaling.yaml --out reports/gpt2_tiny_scaling
    python -m studies wandb-sweep configs/studies/gpt2_tiny_scaling.yaml > sweep.yaml

``spec`` reads and checks the study file, ``points`` turns it into point directories and ``run.py``
commands, ``job`` is what runs in a submitit job (standard library only: it starts fast), ``launch``,
``status``, ``report`` and ``wandb_sweep`` are the commands. This package sits above ``callbacks`` and
below ``run.py``: it starts ``run.py`` in subprocesses and never imports it.
"""
