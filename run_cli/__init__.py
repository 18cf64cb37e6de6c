"""What ``run.py`` needs beyond LightningCLI: one-line parser errors (``parser_errors``, found by ``config_check``
from what the parser accepts; ``given_values``), the rule for a ``fit`` into a directory that holds a run
(``fit_directory``) and the silencing of known noise (``noise``)."""
