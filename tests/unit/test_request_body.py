"""Request bodies: 413 over the limit, 415 for non-JSON media types, 400 for bad bytes or bad JSON."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from spectra.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType
from spectra.http.body import check_request_body

JSON = "application/json"


def check(
    body: str | None,
    *,
    method: str = "POST",
    content_type: str | None = JSON,
    is_base64_encoded: bool = False,
    max_bytes: int = 1024,
) -> Any:
    return check_request_body(
        method=method,
        body=body,
        is_base64_encoded=is_base64_encoded,
        content_type=content_type,
        max_bytes=max_bytes,
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.mark.parametrize("body", [None, ""])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_no_body_is_none(method: str, body: str | None) -> None:
    assert check(body, method=method, content_type=None) is None


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD", "OPTIONS", "get"])
def test_body_of_a_method_without_body_is_ignored(method: str) -> None:
    assert check("not json at all", method=method, content_type="text/plain", max_bytes=1) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "post"])
def test_json_body_is_parsed(method: str) -> None:
    assert check('{"name": "Zürich", "n": [1, 2.5, null]}', method=method) == {"name": "Zürich", "n": [1, 2.5, None]}


def test_body_over_the_limit_is_payload_too_large() -> None:
    with pytest.raises(PayloadTooLarge) as raised:
        check('{"a": "' + "x" * 100 + '"}', max_bytes=100)
    assert raised.value.status == 413


def test_body_exactly_at_the_limit_is_accepted() -> None:
    body = '{"a": "' + "x" * 91 + '"}'
    assert len(body) == 100
    assert check(body, max_bytes=100) == {"a": "x" * 91}


def test_limit_counts_bytes_not_characters() -> None:
    body = '"' + "é" * 50 + '"'  # 52 characters, 102 bytes
    with pytest.raises(PayloadTooLarge):
        check(body, max_bytes=100)


def test_limit_counts_decoded_base64_bytes() -> None:
    raw = b'{"a": "' + b"x" * 91 + b'"}'
    assert check(b64(raw), is_base64_encoded=True, max_bytes=100) == {"a": "x" * 91}
    with pytest.raises(PayloadTooLarge):
        check(b64(raw), is_base64_encoded=True, max_bytes=99)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/jsonp",
        "application/json; charset=latin-1",
        "application/json; charset=iso-8859-1",
        "application/json; charset=utf-16",
        "application/merge-patch+json; charset=latin-1",
    ],
)
def test_non_json_media_type_is_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        check('{"a": 1}', content_type=content_type)
    assert raised.value.status == 415


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/json; charset=utf8",
        "application/merge-patch+json",
        "application/merge-patch+json; charset=utf-8",
        "application/problem+json",
    ],
)
def test_json_media_type_is_accepted(content_type: str) -> None:
    assert check('{"a": 1}', content_type=content_type) == {"a": 1}


def test_base64_body_is_decoded() -> None:
    assert check(b64('{"name": "Zürich"}'.encode()), is_base64_encoded=True) == {"name": "Zürich"}


@pytest.mark.parametrize("body", ["not base64!", "abc", "eyJhIjogMX0=garbage"])
def test_invalid_base64_is_malformed(body: str) -> None:
    with pytest.raises(MalformedBody, match="base64"):
        check(body, is_base64_encoded=True)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b'{"a": "\xe9"}', b'"\xed\xa0\x80"'])
def test_non_utf8_bytes_are_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedBody, match="UTF-8") as raised:
        check(b64(raw), is_base64_encoded=True)
    assert raised.value.status == 400


def test_lone_surrogate_in_text_body_is_malformed() -> None:
    with pytest.raises(MalformedBody, match="UTF-8"):
        check('"\ud800"')


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        ('{"a": 1', 1, 8),
        ("{\n  'a': 1\n}", 2, 3),
        ('{"a": 1,}', 1, 8),
        ("not json", 1, 1),
        ('{"a": 1} trailing', 1, 10),
    ],
)
def test_malformed_json_reports_line_and_column(body: str, line: int, column: int) -> None:
    with pytest.raises(MalformedBody) as raised:
        check(body)
    assert f"line {line}, column {column}" in raised.value.detail
    assert raised.value.status == 400
    assert raised.value.code == "malformed_body"


def test_size_is_checked_before_media_type() -> None:
    with pytest.raises(PayloadTooLarge):
        check("x" * 200, content_type="text/plain", max_bytes=100)


def test_media_type_is_checked_before_json() -> None:
    with pytest.raises(UnsupportedMediaType):
        check("not json", content_type="text/plain")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_constants_are_malformed(constant: str) -> None:
    with pytest.raises(MalformedBody):
        check(f'{{"value": {constant}}}')
