"""``spectra`` command line: operators manage organizations; every command prints JSON.

    spectra org create --name NAME [--plan standard] [--no-wait] (--stack STACK --region REGION | --local)
    spectra org list|show|suspend|resume|reconcile [ORG_ID] (--stack STACK --region REGION | --local)
    spectra org delete ORG_ID --confirm ORG_ID (--stack STACK --region REGION | --local)
    spectra org set-plan ORG_ID --plan PLAN (--stack STACK --region REGION | --local)
    spectra org set-limits ORG_ID --tier TIER (--rate-per-minute N --burst N | --clear) (...)
    spectra schedule run FUNCTION (--stack STACK --region REGION | --local)
    spectra audit verify ORG_ID [--from T] [--to T] (--stack STACK --region REGION | --local)
    spectra restore --table TABLE --to T [--org ORG_ID [--delete-newer] [--include-access]]
        (--stack STACK --region REGION | --local)

``restore`` restores TABLE (a name, or records|idempotency|audit|rate-limits|telemetry) as it was at
T into a new table and counts it; with ``--org`` it copies that org's items back into TABLE
(README "Restore a table"). It exits 1 for a time outside the table's recovery window.
``audit verify`` exits 4 when the chain does not verify. ``org create`` exits 3 (after printing
the org and its key) when the org's usage identifier is still not attached after a minute.
``--stack`` acts on a deployed stack (resources found from its outputs, the operator's AWS
credentials); ``--local`` acts on the running local runtime (``make dev``). Both run the same
code as the functions (provisioning, the audit routes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from spectra.audit.store import AuditLog
from spectra.backups import TableRestorer
from spectra.config import Settings
from spectra.errors import NotFound, SpectraError, ValidationFailed
from spectra.identifiers import is_guid
from spectra.models.common import as_utc
from spectra.pagination import PageTokens
from spectra.provisioning import (
    CreateOrg,
    DeleteOrg,
    ListOrgs,
    OrgAction,
    OrgCommand,
    Provisioner,
    SetLimits,
    SetPlan,
    TierLimitOverride,
    build_provisioner,
)
from spectra.ratelimits.plans import DEFAULT_PLAN, PLANS, Tier
from spectra.services.audit import AuditService
from spectra.telemetry_store import telemetry_table_name
from spectra.tenancy.context import OrgContext
from spectra.tenancy.sessions import OrgSessions
from spectra_cli.local import (
    LocalRuntimeNotRunning,
    attach_local_stack,
    deliver_local_queues,
    local_settings,
    remember_org,
)
from spectra_cli.stack import StackNotReady, scheduled_function_name, settings_from_stack

IDENTIFIER_WAIT_SECONDS = 60
IDENTIFIER_PENDING = (
    "the org was created but its usage identifier is not attached yet, so its keys are refused at "
    "the edge; check the usage-identifiers queue and alarms, then run `spectra org reconcile ORG_ID`"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spectra", description="Operate a Spectra deployment.")
    groups = parser.add_subparsers(dest="group", required=True)
    org = groups.add_parser("org", help="organizations")
    commands = org.add_subparsers(dest="command", required=True)

    def with_target(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        target = command.add_mutually_exclusive_group(required=True)
        target.add_argument("--stack", help="CloudFormation stack name of the deployment")
        target.add_argument("--local", action="store_true", help="the running local runtime (make dev)")
        command.add_argument("--region", default=os.environ.get("AWS_REGION"), help="AWS region of the stack")
        command.add_argument("--profile", default=None, help="AWS CLI profile to use")
        return command

    create = with_target(commands.add_parser("create", help="create an org and its first admin key"))
    create.add_argument("--name", required=True)
    create.add_argument("--plan", default=DEFAULT_PLAN, choices=sorted(PLANS))
    create.add_argument(
        "--no-wait", action="store_true", help="return before the org's usage identifier is attached (keys 403 until)"
    )
    with_target(commands.add_parser("list", help="list orgs"))
    for verb in ("suspend", "resume", "show", "reconcile"):
        command = with_target(commands.add_parser(verb, help=f"{verb} an org"))
        command.add_argument("org_id", metavar="ORG_ID")
    delete = with_target(commands.add_parser("delete", help="revoke every key, remove the org's telemetry store"))
    delete.add_argument("org_id", metavar="ORG_ID")
    delete.add_argument("--confirm", required=True, metavar="ORG_ID", help="the org id again")
    set_plan = with_target(commands.add_parser("set-plan", help="move an org to another plan"))
    set_plan.add_argument("org_id", metavar="ORG_ID")
    set_plan.add_argument("--plan", required=True, choices=sorted(PLANS))
    set_limits = with_target(
        commands.add_parser("set-limits", help="override one tier's limit for an org (or --clear the override)")
    )
    set_limits.add_argument("org_id", metavar="ORG_ID")
    set_limits.add_argument("--tier", required=True, choices=[tier.value for tier in Tier])
    override = set_limits.add_mutually_exclusive_group(required=True)
    override.add_argument("--rate-per-minute", type=int, metavar="N", help="sustained rate (needs --burst)")
    override.add_argument("--clear", action="store_true", help="back to the plan's limit for this tier")
    set_limits.add_argument("--burst", type=int, metavar="N", help="bucket size")
    audit = groups.add_parser("audit", help="audit logs").add_subparsers(dest="command", required=True)
    verify = with_target(audit.add_parser("verify", help="recompute an org's audit chain"))
    verify.add_argument("org_id", metavar="ORG_ID")
    verify.add_argument("--from", dest="start", type=_moment, help="events at or after (ISO-8601, UTC by default)")
    verify.add_argument("--to", dest="end", type=_moment, help="events at or before (ISO-8601, UTC by default)")
    restore = with_target(groups.add_parser("restore", help="restore a table to a point in time, into a new table"))
    restore.add_argument(
        "--table", required=True, help=f"a table name, or one of {', '.join(RESTORABLE)} (telemetry: the org's)"
    )
    restore.add_argument("--to", dest="to", required=True, type=_moment, help="ISO-8601 time (UTC by default)")
    restore.add_argument("--org", dest="org_id", metavar="ORG_ID", help="copy this org's items back into the table")
    restore.add_argument(
        "--delete-newer", action="store_true", help="with --org: delete the org's live items the restore does not have"
    )
    restore.add_argument(
        "--include-access",
        action="store_true",
        help="with --org: also restore the org's profile and API keys (revoked keys come back as they were)",
    )
    schedule = groups.add_parser("schedule", help="scheduled functions").add_subparsers(dest="command", required=True)
    run_now = with_target(schedule.add_parser("run", help="run a scheduled function once, as EventBridge would"))
    run_now.add_argument("function", metavar="FUNCTION", help="function folder name, e.g. retention")
    return parser


def _moment(text: str) -> datetime:
    try:
        moment = as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from error
    assert moment is not None
    return moment


def _settings_and_session(args: argparse.Namespace) -> tuple[Settings, boto3.Session]:
    """The deployment's settings and the session to act with (``--local`` or ``--stack``)."""
    if args.local:
        return local_settings(attach_local_stack()), boto3.Session()
    if not args.region:
        raise StackNotReady("no region: pass --region or set AWS_REGION")
    # Powertools' secret provider follows the default session's region.
    os.environ["AWS_DEFAULT_REGION"] = args.region
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    return settings_from_stack(session, args.stack), session


def verify_audit(args: argparse.Namespace) -> Any:
    """``spectra audit verify``: the same verification as ``GET /audit-events/verify``, run
    with the org's own credentials (the operator role may assume the org data role)."""
    if not is_guid(args.org_id):
        raise NotFound("No such organization.")
    settings, session = _settings_and_session(args)
    log = AuditLog.of(OrgSessions(settings.org_data_role_arn, sts_client=session.client("sts")), settings)
    if log is None:
        raise NotFound("This deployment has no audit table.")
    service = AuditService(log, page_tokens=PageTokens(lambda: b""))
    result = service.verify(OrgContext.for_operator(args.org_id), start=args.start, end=args.end)
    return {"orgId": args.org_id, **result.model_dump()}


RESTORABLE = ("records", "idempotency", "audit", "rate-limits", "telemetry")


def restore_table(args: argparse.Namespace) -> Any:
    """``spectra restore``: the layer's restore, with the operator's credentials."""
    if args.org_id is not None and not is_guid(args.org_id):
        raise NotFound("No such organization.")
    settings, session = _settings_and_session(args)
    restorer = TableRestorer(session.client("dynamodb"), settings)
    table = _table_named(args.table, settings, args.org_id)
    return restorer.restore(
        table, args.to, org_id=args.org_id, delete_newer=args.delete_newer, include_access=args.include_access
    ).as_dict()


def _table_named(name: str, settings: Settings, org_id: str | None) -> str:
    """A table name as given, or the deployment's table a short name stands for."""
    if name == "telemetry":
        if org_id is None:
            raise ValidationFailed.single("org", "--table telemetry means the org's telemetry table: pass --org")
        return telemetry_table_name(settings, org_id)
    tables = {
        "records": settings.records_table,
        "idempotency": settings.idempotency_table,
        "audit": settings.audit_table,
        "rate-limits": settings.rate_limit_table,
    }
    return tables.get(name) or name


def _provisioner(args: argparse.Namespace) -> Provisioner:
    settings, session = _settings_and_session(args)
    return build_provisioner(settings, session)


class NotScheduled(ValueError):
    """The named function has no schedule (or does not exist)."""


class ScheduledRunFailed(RuntimeError):
    """The scheduled function ran and failed (or could not start)."""


def run_schedule(args: argparse.Namespace) -> Any:
    """Invoke a scheduled function once, with the event EventBridge sends, and wait for it."""
    from spectra_local.schedules import scheduled_event
    from spectra_local.template import Template

    function = str(args.function)
    try:
        schedules = Template().function_by_folder(function).schedules
    except KeyError:
        schedules = ()
    if not schedules:
        raise NotScheduled(f"function {function!r} has no schedule in template.yaml")
    if not args.local:
        if not args.region:
            raise StackNotReady("no region: pass --region or set AWS_REGION")
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        name = scheduled_function_name(session, args.stack, function)
        # Scheduled functions may run up to 15 minutes: wait as long as they may take.
        client: Any = session.client("lambda", config=Config(read_timeout=960, retries={"max_attempts": 1}))
        event = scheduled_event("spectra-cli", region=args.region)
        try:
            response = client.invoke(FunctionName=name, Payload=json.dumps(event).encode("utf-8"))
        except client.exceptions.TooManyRequestsException as error:
            raise ScheduledRunFailed(f"{name} is already running (one run at a time); try again later") from error
        result = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise ScheduledRunFailed(f"{name} failed: {json.dumps(result)}")
        return {"function": name, "result": result}
    with _function_output_to_stderr():
        stack = attach_local_stack()
        target = stack.function(function)
        rule = str(target.spec.schedules[0]["name"])
        try:
            result = target.invoke(scheduled_event(rule, region=stack.region))
        except Exception as error:
            raise ScheduledRunFailed(f"{target.spec.logical_id} failed: {type(error).__name__}: {error}") from error
    return {"function": target.spec.logical_id, "result": result}


@contextmanager
def _function_output_to_stderr() -> Iterator[None]:
    """A function run in this process logs and emits metrics on stdout, as Lambda does; here
    they go to stderr so stdout stays the one JSON document scripts read."""
    streams = [
        handler
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout
    ]
    for handler in streams:
        handler.setStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler in streams:
            handler.setStream(sys.stdout)


_ORG_ACTIONS = {
    "show": "describe_org",
    "suspend": "suspend_org",
    "resume": "resume_org",
    "reconcile": "reconcile_org",
}


def org_command(args: argparse.Namespace) -> OrgCommand:
    """The provisioning command for a parsed ``spectra org …`` line."""
    if args.command == "create":
        return CreateOrg(name=args.name, plan=args.plan)
    if args.command == "set-plan":
        return SetPlan(orgId=args.org_id, plan=args.plan)
    if args.command == "set-limits":
        if args.clear:
            if args.burst is not None:
                raise ValidationFailed.single("burst", "--clear takes no --burst: it restores the plan's limit")
            return SetLimits(orgId=args.org_id, limits={Tier(args.tier): None})
        if args.burst is None:
            raise ValidationFailed.single("burst", "--burst is required with --rate-per-minute")
        override = TierLimitOverride(ratePerMinute=args.rate_per_minute, burst=args.burst)
        return SetLimits(orgId=args.org_id, limits={Tier(args.tier): override})
    if args.command == "delete":
        return DeleteOrg(orgId=args.org_id, confirm=args.confirm)
    if args.command == "list":
        return ListOrgs()
    return OrgAction(action=_ORG_ACTIONS[args.command], orgId=args.org_id)


def run(
    args: argparse.Namespace,
    provisioner: Provisioner,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
) -> Any:
    """Carry out one parsed ``org`` command.

    A new org's keys work once the usage identifier worker has attached its usage identifier
    (seconds): ``create`` waits for that, so the key it prints can be used at once.
    """
    result = provisioner.run(org_command(args))
    if args.local:
        if args.command == "create":
            remember_org(result)
        with _function_output_to_stderr():
            deliver_local_queues()
    if args.command == "create" and not args.no_wait:
        deadline = clock() + IDENTIFIER_WAIT_SECONDS
        while (state := provisioner.describe(result["orgId"])["usageIdentifier"]) != "attached":
            if clock() >= deadline:
                break
            (sleep or time.sleep)(1)
        result["usageIdentifier"] = state
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.group == "schedule":
            result = run_schedule(args)
        elif args.group == "audit":
            result = verify_audit(args)
        elif args.group == "restore":
            result = restore_table(args)
        else:
            result = run(args, _provisioner(args))
    except SpectraError as error:
        print(json.dumps({"error": error.problem(request_id=None, instance=None)}), file=sys.stderr)
        return 1
    except ValidationError as error:
        problems = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()]
        print(json.dumps({"error": {"detail": "invalid arguments", "errors": problems}}), file=sys.stderr)
        return 1
    except ScheduledRunFailed as error:
        print(json.dumps({"error": {"detail": str(error)}}), file=sys.stderr)
        return 1
    except (StackNotReady, LocalRuntimeNotRunning, NotScheduled, KeyError, ClientError, BotoCoreError) as error:
        print(json.dumps({"error": {"detail": str(error)}}), file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    if args.group == "audit" and not result["valid"]:
        return 4
    if isinstance(result, dict) and result.get("usageIdentifier") == "pending":
        # The org exists (and its key is printed, once): only the edge does not accept it yet.
        print(json.dumps({"error": {"detail": IDENTIFIER_PENDING}}), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
