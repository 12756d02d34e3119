"""Vitalgate api package."""
