"""Helpers the tests share: CLI runs, generated fixtures, W&B offline readers, statistics checks.

Imported one way only: ``from tests.helpers.<module> import ...``.
"""
