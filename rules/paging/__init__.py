"""Paging: policy as data, an outbox of pages written with escalation changes,
channels (webhook, PagerDuty, email, SMS) and a dispatcher that delivers them.

See docs/paging.md.
"""
