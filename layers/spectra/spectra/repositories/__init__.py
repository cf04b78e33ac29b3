"""Repositories: storage behind small interfaces, every call scoped by an ``OrgContext``.

Keys come from ``spectra.tenancy.keys`` only, and data access uses org-scoped credentials from
``spectra.tenancy.sessions``: a repository cannot reach another org's items even by mistake.
"""
