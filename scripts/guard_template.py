"""Check the template against AWS Control Tower's cfn-guard rules (part of ``make validate``).

cfn-guard reads plain CloudFormation, so the SAM template is translated first with
``samtranslator``, offline: SAM's managed policy names resolve from the map bundled with it, not
from IAM. Run it with the interpreter that has ``samtranslator`` (``.venv-sam``)::

    .venv-sam/bin/python scripts/guard_template.py check  <validator package> template.yaml
    .venv-sam/bin/python scripts/guard_template.py translate template.yaml out.json

A resource opts out of a rule with ``Metadata: guard: SuppressedRules: [rule]`` and a comment
saying why (SAM copies a function's Metadata to the permissions it generates for it); the CT
rules do not read that Metadata themselves, so this script applies it. Rules that cannot judge
this template at all are listed in ``EXCLUDED_RULES`` with the reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samtranslator.internal.managed_policies import (  # type: ignore[import-not-found]
    get_bundled_managed_policy_map,
)
from samtranslator.translator.transform import transform  # type: ignore[import-not-found]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-not-found]

PARTITION = "aws"
REGION = "us-east-1"
"""SAM wants a region for its pseudo parameters; the template itself names none."""

LOCAL_PATH_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
"""Properties that name a local folder; SAM translates them only once ``sam package`` made them S3 URIs."""

RULE_SERVICES = (
    "apigateway",
    "cloudtrail",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "identityandaccessmanagement",
    "keymanagementservice",
    "lambda",
    "s3",
    "sqs",
    "waf",
)
"""Control Tower rule folders for the services the template has resources of."""

EXCLUDED_RULES = {
    "cloudwatch_log_group_retention_period_check": (
        "Every log group's RetentionInDays is the LogRetentionDays parameter, whose AllowedValues are all"
        " at least 365 days; guard cannot compare a Ref with a number. tests/security checks both."
    ),
    "lambda_inside_vpc_check": (
        "Every function's SubnetIds comes from Globals as an Fn::If (the stack's private subnets or"
        " ExistingPrivateSubnetIds), which the rule cannot read as a list. tests/security checks that"
        " every function runs in the private subnets with the functions' security group."
    ),
}
"""Rules that cannot judge this template (not ones it fails on purpose: those are suppressed per resource)."""


class BundledManagedPolicies:
    """The managed policy loader ``transform`` expects, answered from the bundled map (offline)."""

    def load(self) -> dict[str, str]:
        policies: dict[str, str] | None = get_bundled_managed_policy_map(PARTITION)
        return dict(policies or {})


def as_packaged(document: dict[str, Any]) -> dict[str, Any]:
    """Point local code folders at a placeholder S3 URI, as ``sam package`` would (cfn-lint does the same)."""
    for resource in document.get("Resources", {}).values():
        name = LOCAL_PATH_PROPERTIES.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if name and isinstance(properties.get(name), str) and not properties[name].startswith("s3://"):
            properties[name] = f"s3://packaged-code/{properties[name].strip('/')}"
    return document


def translate(template: Path) -> dict[str, Any]:
    """The SAM template as CloudFormation, every resource's Metadata carried through."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    document = as_packaged(yaml_parse(template.read_text(encoding="utf-8")))
    translated: dict[str, Any] = transform(document, {}, BundledManagedPolicies(), passthrough_metadata=True)
    return translated


def guard_binary(package: Path) -> Path:
    """The cfn-guard the validator package ships for this machine (``ubuntu`` serves every Linux)."""
    system = "macos" if sys.platform == "darwin" else "ubuntu"
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    return package / "bin" / system / machine / "cfn-guard"


def rule_files(package: Path) -> list[Path]:
    rules = package / "rules" / "control-tower" / "cfn-guard"
    return sorted(path for service in RULE_SERVICES for path in (rules / service).glob("*.guard"))


def suppressions(template: dict[str, Any]) -> dict[str, set[str]]:
    """Each resource's ``Metadata.guard.SuppressedRules``."""
    found: dict[str, set[str]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        rules = resource.get("Metadata", {}).get("guard", {}).get("SuppressedRules", [])
        if rules:
            found[logical_id] = set(rules)
    return found


def _strings(value: Any, key: str) -> Iterator[str]:
    """Every string under ``key`` anywhere in guard's nested report."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name == key and isinstance(item, str):
                yield item
            else:
                yield from _strings(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)


def failures(report: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(rule, resource) pairs guard found non-compliant, with the rule's Control Tower message."""
    found: dict[tuple[str, str], str] = {}
    for document in report:
        for item in document.get("not_compliant", []):
            rule = str(item.get("Rule", {}).get("name", "?"))
            message = next((m.strip() for m in _strings(item, "custom_message") if m.strip()), "")
            for path in _strings(item, "path"):
                match = re.match(r"/Resources/([^/\[]+)", path)
                if match:
                    found[(rule, match.group(1))] = message
    return found


def check(package: Path, template_path: Path) -> int:
    """Run guard on the translated template; report what is neither suppressed nor excluded."""
    template = translate(template_path)
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / "template.json"
        data.write_text(json.dumps(template), encoding="utf-8")
        command = [str(guard_binary(package)), "validate", "--data", str(data)]
        for path in rule_files(package):
            command += ["--rules", str(path)]
        command += ["--output-format", "json", "--structured", "--show-summary", "none"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode not in (0, 19):  # 19: some rule failed; anything else: guard itself did
        print(result.stderr or result.stdout, file=sys.stderr)
        return result.returncode or 1
    suppressed = suppressions(template)
    remaining = {
        (rule, resource): message
        for (rule, resource), message in failures(json.loads(result.stdout)).items()
        if rule not in EXCLUDED_RULES and rule not in suppressed.get(resource, set())
    }
    for (rule, resource), message in sorted(remaining.items()):
        print(f"FAIL {rule} on {resource}\n    {message}", file=sys.stderr)
    print(
        f"cfn-guard: {len(rule_files(package))} Control Tower rule files, {len(remaining)} failure(s),"
        f" {len(EXCLUDED_RULES)} rule(s) excluded, suppressions on {len(suppressed)} resource(s)"
    )
    return 1 if remaining else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="run the Control Tower rules on the template")
    checking.add_argument("package", type=Path, help="the installed @cdklabs/cdk-validator-cfnguard")
    checking.add_argument("template", type=Path)
    translating = commands.add_parser("translate", help="write the template as plain CloudFormation (JSON)")
    translating.add_argument("template", type=Path)
    translating.add_argument("output", type=Path)
    arguments = parser.parse_args(argv)
    if arguments.command == "check":
        return check(arguments.package, arguments.template)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(translate(arguments.template), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
