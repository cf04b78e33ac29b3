"""Telemetry: each org's frames in its own table, reached only through the org's own role."""
