"""Vitalgate ingest package."""
