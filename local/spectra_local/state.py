"""Save the embedded AWS's data on shutdown and put it back on start.

Tables (definition and every item) and secret values are written to one JSON file in the
state folder, atomically; resources the template defines are recreated from the template on
start and then refilled, other tables (e.g. created by provisioning) are recreated from their
saved definition. Scans are fine here: this is the local runtime's persistence, never a
request path.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import boto3

STATE_FILE = "aws-state.json"
FORMAT_VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _table_definition(description: dict[str, Any]) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "TableName": description["TableName"],
        "KeySchema": description["KeySchema"],
        "AttributeDefinitions": description["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    indexes = description.get("GlobalSecondaryIndexes") or []
    if indexes:
        definition["GlobalSecondaryIndexes"] = [
            {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]} for i in indexes
        ]
    return definition


def save_state(directory: Path, *, region: str, seed: dict[str, Any] | None = None) -> Path:
    """Write every table's items, every secret's value and the seed under ``directory``."""
    dynamodb: Any = boto3.client("dynamodb", region_name=region)
    secrets: Any = boto3.client("secretsmanager", region_name=region)
    tables = []
    for name in dynamodb.get_paginator("list_tables").paginate().build_full_result().get("TableNames", []):
        description = dynamodb.describe_table(TableName=name)["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        items: list[dict[str, Any]] = []
        for scanned in dynamodb.get_paginator("scan").paginate(TableName=name):
            items.extend(scanned.get("Items", []))
        tables.append(
            {
                "definition": _table_definition(description),
                "ttlAttribute": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
                "items": items,
            }
        )
    saved_secrets = []
    for page in secrets.get_paginator("list_secrets").paginate():
        for secret in page.get("SecretList", []):
            try:
                value = secrets.get_secret_value(SecretId=secret["ARN"])
            except secrets.exceptions.ResourceNotFoundException:
                continue
            saved_secrets.append({"name": secret["Name"], "value": value.get("SecretString")})
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / STATE_FILE
    temporary = target.with_suffix(".tmp")
    temporary.write_text(
        json.dumps({"version": FORMAT_VERSION, "tables": _encode(tables), "secrets": saved_secrets, "seed": seed}),
        encoding="utf-8",
    )
    os.replace(temporary, target)
    return target


def restore_state(directory: Path, *, region: str) -> dict[str, Any] | None:
    """Refill tables and secrets from a previous run and return its seed (``None``: nothing saved)."""
    source = directory / STATE_FILE
    if not source.exists():
        return None
    saved = json.loads(source.read_text(encoding="utf-8"))
    dynamodb = boto3.client("dynamodb", region_name=region)
    secrets = boto3.client("secretsmanager", region_name=region)
    existing = set(dynamodb.get_paginator("list_tables").paginate().build_full_result().get("TableNames", []))
    for table in _decode(saved.get("tables", [])):
        definition = table["definition"]
        name = definition["TableName"]
        if name not in existing:
            dynamodb.create_table(**definition)
            if table.get("ttlAttribute"):
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": table["ttlAttribute"], "Enabled": True},
                )
        items = table["items"]
        for start in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending: dict[str, Any] = {name: batch}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    for secret in saved.get("secrets", []):
        if secret.get("value") is None:
            continue
        try:
            secrets.put_secret_value(SecretId=secret["name"], SecretString=secret["value"])
        except secrets.exceptions.ResourceNotFoundException:
            secrets.create_secret(Name=secret["name"], SecretString=secret["value"])
    restored_seed: dict[str, Any] = saved.get("seed") or {}
    return restored_seed
