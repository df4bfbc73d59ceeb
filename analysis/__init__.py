"""Results folder in, paper material out: tidy frames (load), statistics (stats), tables, figures.

Works offline on a copied Ray Tune experiment folder: nothing here starts Ray or imports the
training code, except the gate figure, which asks ``pare_core.inspect.gate_map`` to rebuild a model.
"""
