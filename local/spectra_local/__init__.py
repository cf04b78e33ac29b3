"""The Docker-free local runtime: Spectra's template, functions and layer on an embedded AWS.

Never deployed. ``template`` reads ``template.yaml`` (the single source of tables, functions,
routes and variables); ``aws`` creates the template's resources on a moto backend.
"""
