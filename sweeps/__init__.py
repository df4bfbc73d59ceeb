"""Sweeps over ``pare_core.train.fit`` with Ray Tune: thin scripts over one runner (see docs/sweeps.md).

Ray lives only here: ``pare_core`` never imports it, so the same ``fit`` runs in tests, notebooks,
the CLI and Ray trials.

Data flows one way through the modules, in :data:`LAYERS` order: a module imports modules of its own
layer or of layers before it, never after (``tests/test_imports.py`` checks every import, and that every
module here has a layer). docs/sweeps.md, "How sweeps/ is laid out", says what each layer holds.
"""

LAYERS = {
    # what the user asked for: the YAML spec and the command line, validated
    "spec": ("options", "spec"),
    # the trials as they will run: fused, keyed, matched with finished ones, packed on nodes, costed; where results live
    "plan": ("storage", "identity", "fused", "reuse", "plan", "packing", "cost"),
    # Ray: start or join it, build and run the Tuner; the trainable that runs in each trial
    "launch": ("runner", "trainable"),
    # what a launch leaves: summary.md, the progress view, trackers, result files, the tuned config
    "records": ("summary", "progress", "trackers", "retry", "tuned"),
    # what users run: the flags, the driver that wires the layers, the scripts
    "entry": (
        "cli",
        "preflight",
        "driver",
        "__main__",
        "ablate_gate",
        "ablate_curriculum",
        "ablate_backbone",
        "compare_methods",
        "tune_task",
    ),
}
RAY_FREE = ("spec", "plan")  # layers that analysis, dry runs and tests use without Ray
