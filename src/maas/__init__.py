"""maas: train, register, serve and operate ML models over the KServe V2 protocol."""

__version__ = "0.1.0"
__all__ = ["__version__"]
