"""Security tests use the integration suite's fixtures (orgs made through provisioning)."""

from tests.integration.conftest import _parse_botocore_models_once, org, other_org

__all__ = ["_parse_botocore_models_once", "org", "other_org"]
