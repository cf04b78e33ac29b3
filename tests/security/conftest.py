"""Fixtures for security tests: orgs made through the provisioning function of ``stack``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spectra_local.stack import LocalStack
from tests.integration.factories import Org, make_org, shared_botocore_models


@pytest.fixture
def org(stack: LocalStack) -> Org:
    return make_org(stack, "Acme Telemetry")


@pytest.fixture
def other_org(stack: LocalStack) -> Org:
    return make_org(stack, "Globex Sensors")


@pytest.fixture(scope="session", autouse=True)
def _parse_botocore_models_once() -> Iterator[None]:
    with shared_botocore_models():
        yield
