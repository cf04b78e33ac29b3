"""The audit log: an append-only, hash-chained record of every change, one chain per org."""
