"""Lava processes of the neurodeploy neuron.

Lava's model discovery executes every module in the directory of a Process's module, so
this package holds only the side-effect-free ``process`` and ``models`` modules (both use
absolute imports: discovery executes them without a parent package).
"""
