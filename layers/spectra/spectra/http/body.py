"""Request-body checks that run before validation, so every malformed body is a clear problem.

API Gateway passes bodies through untouched; these checks give the status a careful server
would: 413 over the size limit, 415 for a non-JSON content type, 400 for bytes that are not
UTF-8 or text that is not JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from spectra.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType

METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _is_json_media_type(content_type: str) -> bool:
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return False
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "charset" and value.strip().strip('"').lower() not in {"utf-8", "utf8"}:
            return False
    return True


def _reject_non_json_constant(name: str) -> Any:
    """Python's json accepts NaN and Infinity; JSON (RFC 8259) does not, and neither do we."""
    raise MalformedBody(f"The request body is not valid JSON ({name} is not a JSON number).")


def check_request_body(
    *,
    method: str,
    body: str | None,
    is_base64_encoded: bool,
    content_type: str | None,
    max_bytes: int,
) -> Any:
    """Check a request body and return it parsed (``None`` when there is none)."""
    if method.upper() not in METHODS_WITH_BODY or body is None or body == "":
        return None
    if is_base64_encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise MalformedBody("The request body is not valid base64.") from error
    else:
        raw = body.encode("utf-8", errors="surrogatepass")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")
    if not content_type or not _is_json_media_type(content_type):
        raise UnsupportedMediaType("Send the request body as application/json (UTF-8).")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedBody("The request body is not valid UTF-8.") from error
    try:
        return json.loads(text, parse_constant=_reject_non_json_constant)
    except json.JSONDecodeError as error:
        raise MalformedBody(
            f"The request body is not valid JSON (line {error.lineno}, column {error.colno}).",
        ) from error
