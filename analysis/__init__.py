"""Results folder in, paper material out: tidy frames (load), statistics (stats), tables (tables),
figures (plots), provenance footers (provenance); ``python -m analysis.report`` writes all that applies
with an index, ``python -m analysis.print_table`` prints one table.

Works offline on a copied Ray Tune experiment folder: nothing here starts Ray or imports the
training code, except the gate figure, which asks ``pare_core.inspect.gate_map`` to rebuild a model.
"""
