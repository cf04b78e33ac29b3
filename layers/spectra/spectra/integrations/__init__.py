"""Integrations: third-party systems an org connects, and their write-only credentials."""
