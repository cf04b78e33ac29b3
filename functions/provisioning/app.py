"""Org lifecycle for operators (never reachable from the public API): the same code as ``spectra org``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from spectra.config import get_settings
from spectra.errors import SpectraError
from spectra.observability import logger, metrics, tracer
from spectra.provisioning import DEFAULT_PLAN, build_provisioner

provisioner = build_provisioner(get_settings())


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateOrg(_Command):
    action: Literal["create_org"]
    name: str = Field(min_length=1, max_length=200)
    plan: str = DEFAULT_PLAN


class ListOrgs(_Command):
    action: Literal["list_orgs"]


class ChangeOrgStatus(_Command):
    action: Literal["suspend_org", "resume_org", "describe_org"]
    orgId: str


class ProvisioningCommand(BaseModel):
    command: Annotated[CreateOrg | ListOrgs | ChangeOrgStatus, Field(discriminator="action")]


def run(command: CreateOrg | ListOrgs | ChangeOrgStatus) -> dict[str, Any]:
    """Carry out one operator command and return its JSON result."""
    if isinstance(command, CreateOrg):
        created = provisioner.create_org(command.name, command.plan)
        logger.info("Organization created", org_id=created.orgId)
        return created.as_dict()
    if isinstance(command, ListOrgs):
        return {"items": provisioner.list_orgs()}
    if command.action == "suspend_org":
        return provisioner.suspend(command.orgId)
    if command.action == "resume_org":
        return provisioner.resume(command.orgId)
    return provisioner.describe(command.orgId)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_parser(model=ProvisioningCommand)
def lambda_handler(event: ProvisioningCommand, context: LambdaContext) -> dict[str, Any]:
    try:
        return run(event.command)
    except SpectraError as error:
        return {"error": error.problem(request_id=context.aws_request_id, instance=None)}
