"""neurodeploy: PyTorch ANN -> integer spiking network (NIR) -> Loihi-class hardware."""

__version__ = "0.1.0"
