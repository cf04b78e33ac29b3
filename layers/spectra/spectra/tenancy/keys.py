"""Key builders: the only place a DynamoDB key string is written.

Every key starts ``ORG#{orgId}#`` and every id is followed by ``#``. Ids are validated before
they are placed in a key, so a caller-supplied value can never change a key's shape.
"""

from __future__ import annotations

import hashlib
import re

from spectra.identifiers import MalformedId, is_guid, require_prefixed
from spectra.tenancy.context import OrgContext

Key = dict[str, str]

ORG_REGISTRY_PARTITION = "ORGS#"
"""The one partition outside any org: the operator's list of orgs (provisioning role only)."""


RETENTION_PARTITION = "RETENTION#"
"""The retention job's checkpoints, one per org (no customer data; the retention role only)."""


def _guid(value: str, kind: str) -> str:
    if not is_guid(value):
        raise MalformedId(f"{kind} must be a GUID")
    return value


def org_prefix(org: OrgContext) -> str:
    """``ORG#{orgId}#``: the leading characters of every key the org owns."""
    return f"ORG#{_guid(org.org_id, 'org id')}#"


def org_profile_key(org: OrgContext) -> Key:
    """The organization's own record (name, plan, status, retention)."""
    return {"pk": f"{org_prefix(org)}PROFILE#", "sk": "PROFILE#"}


def org_registry_entry(org: OrgContext) -> Key:
    """Index attributes that list the org in the operator registry (``gsi1``)."""
    return {"gsi1pk": ORG_REGISTRY_PARTITION, "gsi1sk": f"ORG#{_guid(org.org_id, 'org id')}#"}


def api_keys_partition(org: OrgContext) -> str:
    """The partition holding all of an org's API keys (few per org, listed together)."""
    return f"{org_prefix(org)}APIKEYS#"


API_KEY_SORT_PREFIX = "APIKEY#"


def api_key_key(org: OrgContext, key_id: str) -> Key:
    """One API key record."""
    return {"pk": api_keys_partition(org), "sk": f"{API_KEY_SORT_PREFIX}{_guid(key_id, 'key id')}#"}


def api_key_set_key(org: OrgContext) -> Key:
    """The org's key-set version item: a guard that serialises key status changes."""
    return {"pk": api_keys_partition(org), "sk": "KEYSET#"}


def credential_index_value(key_id: str) -> str:
    """The ``credentials`` index value for a key id: the authorizer's one lookup.

    It is the only index whose partition is not org-prefixed, because a presented key carries
    its id and nothing else; only the authorizer may query it, and every hit is checked against
    the secret's keyed hash before the org it names is trusted.
    """
    return f"APIKEY#{_guid(key_id, 'key id')}#"


# -- definitions -------------------------------------------------------------------------------

METRIC_SORT_PREFIX = "METRIC#"
THING_TYPE_SORT_PREFIX = "THINGTYPE#"
TEMPLATE_SORT_PREFIX = "TEMPLATE#"


def _prefixed(value: str, prefix: str) -> str:
    return require_prefixed(value, prefix)


def metrics_partition(org: OrgContext) -> str:
    """All of an org's metric definitions (listed together, newest id order irrelevant)."""
    return f"{org_prefix(org)}METRICS#"


def metric_key(org: OrgContext, metric_id: str) -> Key:
    """One metric definition."""
    return {"pk": metrics_partition(org), "sk": f"{METRIC_SORT_PREFIX}{_prefixed(metric_id, 'mdef')}#"}


def metric_name_guard_key(org: OrgContext, name: str) -> Key:
    """The guard that makes a metric name unique in the org, case-insensitively.

    The name is hashed, so no character a caller types can change the key's shape.
    """
    digest = hashlib.sha256(name.casefold().encode("utf-8")).hexdigest()
    return {"pk": f"{org_prefix(org)}METRICNAME#{digest}#", "sk": "GUARD#"}


def thing_types_partition(org: OrgContext) -> str:
    """All of an org's thing types (their index records)."""
    return f"{org_prefix(org)}THINGTYPES#"


def thing_type_key(org: OrgContext, thing_type_id: str) -> Key:
    """One thing type's index record (name, versions, latest version)."""
    return {"pk": thing_types_partition(org), "sk": f"{THING_TYPE_SORT_PREFIX}{_prefixed(thing_type_id, 'tdefi')}#"}


def thing_type_version_key(org: OrgContext, thing_type_def_id: str) -> Key:
    """One thing-type version, addressed by its own id (``tdef_…``)."""
    return {"pk": f"{org_prefix(org)}THINGTYPEDEFS#", "sk": f"THINGTYPEDEF#{_prefixed(thing_type_def_id, 'tdef')}#"}


def templates_partition(org: OrgContext) -> str:
    """All of an org's ingestion templates."""
    return f"{org_prefix(org)}TEMPLATES#"


def template_key(org: OrgContext, template_id: str) -> Key:
    """One ingestion template."""
    return {"pk": templates_partition(org), "sk": f"{TEMPLATE_SORT_PREFIX}{_guid(template_id, 'template id')}#"}


# -- places and things -------------------------------------------------------------------------

SITE_SORT_PREFIX = "SITE#"
FLEET_SORT_PREFIX = "FLEET#"
LEVEL_SORT_PREFIX = "LEVEL#"
THING_SORT_PREFIX = "THING#"


def sites_partition(org: OrgContext) -> str:
    """All of an org's sites."""
    return f"{org_prefix(org)}SITES#"


def site_key(org: OrgContext, site_id: str) -> Key:
    """One site (with its level-type rules and counters)."""
    return {"pk": sites_partition(org), "sk": f"{SITE_SORT_PREFIX}{_guid(site_id, 'site id')}#"}


def fleets_partition(org: OrgContext) -> str:
    """All of an org's fleets."""
    return f"{org_prefix(org)}FLEETS#"


def fleet_key(org: OrgContext, fleet_id: str) -> Key:
    """One fleet."""
    return {"pk": fleets_partition(org), "sk": f"{FLEET_SORT_PREFIX}{_guid(fleet_id, 'fleet id')}#"}


def place_key(org: OrgContext, place_type: str, place_id: str) -> Key:
    """A site or a fleet, by type (``Site``/``Fleet``)."""
    if place_type == "Site":
        return site_key(org, place_id)
    if place_type == "Fleet":
        return fleet_key(org, place_id)
    raise MalformedId("place type must be Site or Fleet")


def levels_partition(org: OrgContext, site_id: str) -> str:
    """All levels of one site (the tree is read in one Query)."""
    return f"{org_prefix(org)}SITE#{_guid(site_id, 'site id')}#LEVELS#"


def level_key(org: OrgContext, site_id: str, level_id: str) -> Key:
    """One level of a site."""
    return {"pk": levels_partition(org, site_id), "sk": f"{LEVEL_SORT_PREFIX}{_guid(level_id, 'level id')}#"}


def things_partition(org: OrgContext) -> str:
    """All of an org's things (``GET /things`` without filters)."""
    return f"{org_prefix(org)}THINGS#"


def thing_key(org: OrgContext, thing_id: str) -> Key:
    """One thing."""
    return {"pk": things_partition(org), "sk": f"{THING_SORT_PREFIX}{_guid(thing_id, 'thing id')}#"}


def thing_index_attributes(org: OrgContext, thing_id: str, place_id: str, thing_type_id: str) -> Key:
    """Index attributes that list a thing under its place (``gsi1``) and its type (``gsi2``)."""
    sort_key = f"{THING_SORT_PREFIX}{_guid(thing_id, 'thing id')}#"
    return {
        "gsi1pk": place_things_partition(org, place_id),
        "gsi1sk": sort_key,
        "gsi2pk": type_things_partition(org, thing_type_id),
        "gsi2sk": sort_key,
    }


def place_things_partition(org: OrgContext, place_id: str) -> str:
    """The things of one site or fleet (``gsi1``)."""
    return f"{org_prefix(org)}PLACE#{_guid(place_id, 'place id')}#THINGS#"


def type_things_partition(org: OrgContext, thing_type_id: str) -> str:
    """The things of one thing type (``gsi2``)."""
    return f"{org_prefix(org)}THINGTYPE#{_prefixed(thing_type_id, 'tdefi')}#THINGS#"


def manufacturer_id_guard_key(org: OrgContext, thing_type_id: str, manufacturer_id: str) -> Key:
    """The guard that makes ``thingManufacturerId`` unique within a thing type (hashed, any text)."""
    digest = hashlib.sha256(manufacturer_id.encode("utf-8")).hexdigest()
    return {"pk": f"{org_prefix(org)}THINGTYPE#{_prefixed(thing_type_id, 'tdefi')}#MFR#{digest}#", "sk": "GUARD#"}


def outbox_partition(org: OrgContext) -> str:
    """Events committed with a change and not yet confirmed as published (the org's outbox)."""
    return f"{org_prefix(org)}OUTBOX#"


def outbox_key(org: OrgContext, event_type: str, subject_id: str) -> Key:
    """One pending event, e.g. ``ThingDeleted`` for a thing id."""
    if not re.fullmatch(r"[A-Za-z]{1,50}", event_type):
        raise MalformedId("event type must be letters only")
    return {"pk": outbox_partition(org), "sk": f"{event_type}#{_guid(subject_id, 'subject id')}#"}


def retention_checkpoint_key(org: OrgContext) -> Key:
    """Where the retention job records how far it got with ``org`` (sorted like the registry)."""
    return {"pk": RETENTION_PARTITION, "sk": f"ORG#{_guid(org.org_id, 'org id')}#"}


# -- integrations -----------------------------------------------------------------------------

INTEGRATION_SORT_PREFIX = "INTEGRATION#"
RESOURCE_MAPPING_SORT_PREFIX = "MAPPING#"


def integrations_partition(org: OrgContext) -> str:
    return f"{org_prefix(org)}INTEGRATIONS#"


def integration_key(org: OrgContext, integration_id: str) -> Key:
    return {
        "pk": integrations_partition(org),
        "sk": f"{INTEGRATION_SORT_PREFIX}{_guid(integration_id, 'integration id')}#",
    }


def resource_mappings_partition(org: OrgContext) -> str:
    """Every resource mapping of the org (listed by ``gsi1`` per integration)."""
    return f"{org_prefix(org)}RESOURCEMAPPINGS#"


def resource_mapping_key(org: OrgContext, mapping_id: str) -> Key:
    return {
        "pk": resource_mappings_partition(org),
        "sk": f"{RESOURCE_MAPPING_SORT_PREFIX}{_guid(mapping_id, 'mapping id')}#",
    }


def integration_mappings_partition(org: OrgContext, integration_id: str) -> str:
    """The mappings of one integration (``gsi1``)."""
    return f"{org_prefix(org)}INTEGRATION#{_guid(integration_id, 'integration id')}#MAPPINGS#"


def resource_mapping_index_attributes(org: OrgContext, integration_id: str, mapping_id: str) -> Key:
    return {
        "gsi1pk": integration_mappings_partition(org, integration_id),
        "gsi1sk": f"{RESOURCE_MAPPING_SORT_PREFIX}{_guid(mapping_id, 'mapping id')}#",
    }


def resource_mapping_guard_key(org: OrgContext, integration_id: str, external_id: str) -> Key:
    """The guard that maps a remote id of an integration at most once (hashed, any text)."""
    digest = hashlib.sha256(external_id.encode("utf-8")).hexdigest()
    integration = _guid(integration_id, "integration id")
    return {"pk": f"{org_prefix(org)}INTEGRATION#{integration}#EXTERNAL#{digest}#", "sk": "GUARD#"}


def integration_secret_name(org: OrgContext, stage: str, integration_id: str) -> str:
    """The Secrets Manager name of an integration's secret, under the org's own path (the only
    path the org's secrets role can write)."""
    if not re.fullmatch(r"[A-Za-z0-9-]{1,32}", stage):
        raise MalformedId("stage must be letters, digits or dashes")
    return f"spectra/{stage}/orgs/{_guid(org.org_id, 'org id')}/integrations/{_guid(integration_id, 'integration id')}"


# -- rate limits ---------------------------------------------------------------------------------


def rate_limit_partition(org: OrgContext) -> str:
    """The org's token buckets (one item per tier, in the rate-limit table)."""
    return f"{org_prefix(org)}RATELIMIT#"


def rate_limit_bucket_key(org: OrgContext, tier: str) -> Key:
    """One tier's bucket; ``tier`` is a ``spectra.ratelimits.Tier`` value."""
    if not re.fullmatch(r"[a-z][a-z-]{0,31}", tier):
        raise MalformedId("tier must be a tier name")
    return {"pk": rate_limit_partition(org), "sk": f"TIER#{tier}#"}


# -- audit -----------------------------------------------------------------------------------------

AUDIT_EVENT_SORT_PREFIX = "EVENT#"


def audit_partition(org: OrgContext) -> str:
    """The org's audit chain (in the audit table), one item per event in sequence order."""
    return f"{org_prefix(org)}AUDIT#"


def audit_event_key(org: OrgContext, sequence: int) -> Key:
    """One audit event; zero-padded so the sort key orders events by their place in the chain."""
    if not 1 <= sequence < 10**16:
        raise MalformedId("audit sequence out of range")
    return {"pk": audit_partition(org), "sk": f"{AUDIT_EVENT_SORT_PREFIX}{sequence:016d}#"}
