"""Powertools logger, tracer and metrics shared by the layer and the function that loads it.

The service name comes from ``POWERTOOLS_SERVICE_NAME``, set per function in the template, so
every log line says which function wrote it; the http middleware adds the org and request ids.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
