"""Vitalgate simulators package."""
