"""Tocsin's services and the infrastructure they share."""

__version__ = "0.1.0"
__all__ = ["__version__"]
