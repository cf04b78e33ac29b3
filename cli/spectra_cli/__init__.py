"""``spectra``: the operator CLI (org lifecycle against a deployed stack)."""
