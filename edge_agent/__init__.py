"""Vitalgate edge_agent package."""
