"""``--local``: act on the running local runtime (``make dev``) through its ``seed.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from spectra.config import Settings


class LocalRuntimeNotRunning(RuntimeError):
    """No ``seed.json``/``stack.json`` in the state folder: start ``make dev`` first."""


def state_directory() -> Path:
    return Path(os.environ.get("SPECTRA_STATE_DIR", ".spectra-local")).resolve()


def _read(name: str) -> dict[str, Any]:
    path = state_directory() / name
    if not path.exists():
        raise LocalRuntimeNotRunning(f"{path} not found: start the local runtime with `make dev` first")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def attach_local_stack() -> Any:
    """The running runtime's stack, its AWS endpoint configured for this process."""
    from spectra_local.runtime import configure_local_aws
    from spectra_local.stack import LocalStack
    from spectra_local.template import IntrinsicResolver, Template

    seed, stack_file = _read("seed.json"), _read("stack.json")
    configure_local_aws(seed["awsEndpointUrl"])
    return LocalStack.attach(
        Template(), IntrinsicResolver.from_json(stack_file["resolver"]), region=stack_file["region"]
    )


def local_settings(stack: Any) -> Settings:
    """The provisioning function's settings in the local deployment."""
    return Settings.from_environment(dict(stack.environment("provisioning")))


def remember_org(created: dict[str, Any]) -> None:
    """Add an org made with ``--local`` to ``seed.json`` so local tools can find its key."""
    path = state_directory() / "seed.json"
    seed = _read("seed.json")
    seed.setdefault("orgs", []).append(
        {"orgId": created["orgId"], "name": created["name"], "adminKey": created["adminKey"]}
    )
    path.write_text(json.dumps(seed, indent=2), encoding="utf-8")


def deliver_local_queues() -> None:
    """Run what the command queued (an org's usage identifier) now, as the runtime's poller
    would within a second, so a script can use a new org's key as soon as the command returns."""
    attach_local_stack().deliver_queued()
