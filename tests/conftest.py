"""Test-wide setup: an offline AWS (moto) and Spectra deployed into it from template.yaml."""

from __future__ import annotations

import os

# Before boto3 creates any client: dummy credentials, one region, no tracing daemon, and moto
# imported so every client (even module-level ones) is routed to it while a mock is active.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "Spectra",
        "POWERTOOLS_SERVICE_NAME": "tests",
        "POWERTOOLS_DEV": "false",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from collections.abc import Iterator

import pytest
from moto import mock_aws

from spectra_local.stack import LocalStack
from spectra_local.template import Template


@pytest.fixture(scope="session")
def template() -> Template:
    return Template()


@pytest.fixture
def stack(template: Template) -> Iterator[LocalStack]:
    """A fresh Spectra deployment on a fresh moto backend, per test."""
    with mock_aws():
        created = LocalStack.create(template)
        yield created
        created.close()
