"""neurodeploy: PyTorch ANN -> integer spiking network (NIR) -> Loihi-class hardware."""

from neurodeploy import nir_compat

__version__ = "0.1.0"

nir_compat.install()  # before any graph with a grouped or non-square convolution is built

#: the public API (neurodeploy.api), imported on first use: `import neurodeploy` stays cheap
_API = ("Deployment", "compile", "dataset", "import_nir", "load", "targets")
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        from neurodeploy import api

        return getattr(api, name)
    raise AttributeError(f"module 'neurodeploy' has no attribute '{name}'")
