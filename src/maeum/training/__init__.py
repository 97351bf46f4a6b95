"""Training tools (needs the ``train`` extra: torch). Never imported by inference code."""
