"""Level-tree changes made from a stale read: which may proceed and which must be refused."""

from __future__ import annotations

from typing import Any

import pytest

from spectra.errors import Conflict
from spectra.models.places import CreateLevelRequest, UpdateLevelRequest, UpdateSiteRequest
from spectra.tenancy.context import OrgContext
from spectra_local.stack import LocalStack
from tests.integration.factories import Org
from tests.integration.place_factories import make_level, make_site


def _places(stack: LocalStack) -> Any:
    return stack.function("places").load().places


def _stale(monkeypatch: pytest.MonkeyPatch, places: Any, org: OrgContext, site_id: str) -> None:
    """Make the service act on the site as it was read now, whatever happens afterwards."""
    snapshot = places.get_site(org, site_id)
    monkeypatch.setattr(places, "get_site", lambda *_args, **_kwargs: dict(snapshot))


def test_levels_created_from_the_same_read_do_not_block_each_other(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(stack, org.admin_key)
    places, context = _places(stack), OrgContext.for_operator(org.org_id)
    _stale(monkeypatch, places, context, site["siteId"])

    places.create_level(context, site["siteId"], CreateLevelRequest(levelType="Building", levelName="A"))
    places.create_level(context, site["siteId"], CreateLevelRequest(levelType="Building", levelName="B"))

    stored = places._places.get_site(context, site["siteId"])  # the repository, not the stale service
    assert stored["levelCount"] == 2


def test_level_rules_cannot_change_under_a_level_added_since_they_were_checked(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(stack, org.admin_key)
    places, context = _places(stack), OrgContext.for_operator(org.org_id)
    _stale(monkeypatch, places, context, site["siteId"])
    make_level(stack, org.admin_key, site["siteId"], "Building", name="added meanwhile")

    only_zones = UpdateSiteRequest.model_validate({"levelTypes": [{"levelType": "Zone", "canBeRoot": True}]})
    with pytest.raises(Conflict):
        places.update_site(context, site["siteId"], only_zones)


def test_two_moves_from_the_same_read_cannot_both_land(
    stack: LocalStack, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    areas = [{"levelType": "Area", "canBeRoot": True, "allowedParentTypes": ["Area"]}]
    site = make_site(stack, org.admin_key, levelTypes=areas)
    a = make_level(stack, org.admin_key, site["siteId"], "Area", name="A")
    b = make_level(stack, org.admin_key, site["siteId"], "Area", name="B")
    places, context = _places(stack), OrgContext.for_operator(org.org_id)
    _stale(monkeypatch, places, context, site["siteId"])
    monkeypatch.setattr(places, "_would_cycle", lambda *_args: False)  # both checks ran before either write

    places.update_level(context, site["siteId"], a["levelId"], UpdateLevelRequest(parentLevelId=b["levelId"]))
    with pytest.raises(Conflict):
        places.update_level(context, site["siteId"], b["levelId"], UpdateLevelRequest(parentLevelId=a["levelId"]))
