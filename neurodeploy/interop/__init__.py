"""Interoperability with other tools: import foreign NIR graphs, export plain NIR and lava-dl
netx networks (docs/interop.md)."""
