"""The core every layer shares: the integer neuron rule, the population record, the graph
metadata, integer widths, graph views, the synapse arithmetic, input encoding and readout
decoding. It imports nothing of neurodeploy but ``errors`` (docs/concepts/architecture.md)."""
