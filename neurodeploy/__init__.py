"""neurodeploy: PyTorch ANN -> integer spiking network (NIR) -> Loihi-class hardware."""

from neurodeploy import nir_compat

__version__ = "0.1.0"

nir_compat.install()  # before any graph with a grouped or non-square convolution is built
