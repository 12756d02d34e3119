"""Vitalgate rules package."""
