"""Doorstep: orders from anywhere to the customer's door."""

__version__ = "0.1.0"
