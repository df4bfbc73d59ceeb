"""Sweeps over ``pare_core.train.fit`` with Ray Tune: thin scripts over one runner (see docs/sweeps.md).

Ray lives only here: ``pare_core`` never imports it, so the same ``fit`` runs in tests, notebooks,
the CLI and Ray trials.
"""
