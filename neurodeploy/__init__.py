"""neurodeploy: PyTorch ANN -> integer spiking network (NIR) -> Loihi-class hardware."""

__version__ = "0.1.0"

#: the public API (neurodeploy.api), imported on first use: `import neurodeploy` stays cheap
_API = ("Deployment", "compile", "dataset", "import_nir", "list_targets", "load")
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        from neurodeploy import api

        return getattr(api, name)
    raise AttributeError(f"module 'neurodeploy' has no attribute '{name}'")
