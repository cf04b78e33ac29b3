"""Tenancy: every record belongs to exactly one organization, and the code cannot say otherwise.

- ``OrgContext`` is built only from the authorizer's context (or by operator tooling for the
  org it provisions); nothing in a path, body, query or header can set the org.
- ``keys`` holds the only functions that write DynamoDB keys; every key starts ``ORG#{orgId}#``
  and ends each id with a delimiter, so ``acme`` can never prefix-match ``acme-corp``.
- ``sessions`` hands out org-scoped AWS credentials (STS with the org as a session tag), so the
  data layer itself refuses another org's items.
"""

from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions

__all__ = ["OrgContext", "OrgSessions"]
