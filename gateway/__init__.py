"""Vitalgate gateway: domain model, wire contract, settings, stores, CLI and wiring."""

__version__ = "0.1.0"
