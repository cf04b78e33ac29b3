"""Spectra's shared layer: the code that keeps the platform's promises.

Each module is named for the promise it keeps: ``tenancy`` (every record belongs to exactly one
organization), ``auth`` (scoped, hashed API keys), ``errors`` (one problem+json format),
``pagination`` (signed page tokens bound to the org), ``http`` (the resolver every function uses).
"""
