"""paymon: proves that a payment system's monitoring really works."""

__version__ = "0.1.0"
