"""API key credentials: format, checksum, secret strength, and the keyed hash stored instead."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable

import pytest

from spectra.auth.credentials import (
    BASE62,
    ApiKeyCredential,
    KeyType,
    MalformedKey,
    credential_matches,
    hash_credential,
)
from tests.unit.factories import guid

KEY_FORMAT = re.compile(
    r"spx_(ad|ex)_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}_[0-9A-Za-z]{43}[0-9A-Za-z]{6}"
)
PEPPER = b"pepper-for-unit-tests-0123456789"


def revealed(key_type: KeyType = KeyType.EXTERNAL) -> str:
    return ApiKeyCredential.generate(key_type).reveal()


KEY_ID_START = len("spx_ex_")
SECRET_START = KEY_ID_START + 36 + 1
HEX = "0123456789abcdef"
KEY_ID_WITH_LETTERS = "abcdef01-2345-4678-9abc-def012345678"


def with_char_replaced(text: str, index: int) -> str:
    """``text`` with one character swapped for another of the same class (so the shape still fits)."""
    pool = HEX if KEY_ID_START <= index < SECRET_START else BASE62
    replacement = next(c for c in pool if c != text[index] and c != "-")
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize("key_type", list(KeyType))
def test_generated_key_round_trips_through_reveal_and_parse(key_type: KeyType) -> None:
    credential = ApiKeyCredential.generate(key_type)
    assert ApiKeyCredential.parse(credential.reveal()) == credential


@pytest.mark.parametrize(("key_type", "code"), [(KeyType.ADMIN, "ad"), (KeyType.EXTERNAL, "ex")])
def test_revealed_key_has_the_documented_format(key_type: KeyType, code: str) -> None:
    key = revealed(key_type)
    assert KEY_FORMAT.fullmatch(key)
    assert key.startswith(f"spx_{code}_")


def test_generated_key_uses_the_given_key_id() -> None:
    key_id = guid()
    credential = ApiKeyCredential.generate(KeyType.ADMIN, key_id)
    assert credential.key_id == key_id
    assert f"_{key_id}_" in credential.reveal()


def test_secret_is_43_base62_characters_of_at_least_256_bits() -> None:
    secret = ApiKeyCredential.generate(KeyType.EXTERNAL).secret
    assert len(secret) == 43
    assert set(secret) <= set(BASE62)
    assert len(secret) * math.log2(len(BASE62)) >= 256


def test_two_generated_keys_differ() -> None:
    first = ApiKeyCredential.generate(KeyType.EXTERNAL)
    second = ApiKeyCredential.generate(KeyType.EXTERNAL)
    assert first.secret != second.secret
    assert first.key_id != second.key_id


def test_generated_secrets_use_the_whole_alphabet() -> None:
    # 100 secrets = 4,300 draws; a generator stuck on part of the alphabet would miss characters.
    seen = set("".join(ApiKeyCredential.generate(KeyType.EXTERNAL).secret for _ in range(100)))
    assert seen == set(BASE62)


def test_surrounding_whitespace_is_trimmed() -> None:
    credential = ApiKeyCredential.generate(KeyType.ADMIN)
    assert ApiKeyCredential.parse(f"  {credential.reveal()}\n") == credential


@pytest.mark.parametrize("position", ["key id", "secret start", "secret end", "checksum"])
def test_single_changed_character_is_refused(position: str) -> None:
    key = revealed()
    index = {
        "key id": KEY_ID_START + 3,
        "secret start": SECRET_START,
        "secret end": SECRET_START + 42,
        "checksum": len(key) - 1,
    }[position]
    tampered = with_char_replaced(key, index)
    assert KEY_FORMAT.fullmatch(tampered), "the change must keep the shape so only the checksum can catch it"
    with pytest.raises(MalformedKey, match="checksum"):
        ApiKeyCredential.parse(tampered)


def test_every_single_secret_character_change_is_refused() -> None:
    key = revealed()
    for index in range(SECRET_START, len(key)):
        with pytest.raises(MalformedKey):
            ApiKeyCredential.parse(with_char_replaced(key, index))


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda k: "sk" + k[3:], id="wrong prefix"),
        pytest.param(lambda k: "SPX" + k[3:], id="upper-case prefix"),
        pytest.param(lambda k: k.replace("spx_ex_", "spx_xx_", 1), id="unknown type"),
        pytest.param(lambda k: k.replace("spx_ex_", "spx_ext_", 1), id="long type"),
        pytest.param(lambda k: k[:-7] + k[-6:], id="secret one short"),
        pytest.param(lambda k: k[:-1], id="checksum one short"),
        pytest.param(lambda k: k + "0", id="one extra character"),
        pytest.param(
            lambda k: k[:KEY_ID_START] + k[KEY_ID_START:SECRET_START].upper() + k[SECRET_START:], id="upper key id"
        ),
        pytest.param(lambda k: k[:KEY_ID_START] + "not-a-guid" + k[SECRET_START - 1 :], id="key id not a guid"),
        pytest.param(lambda k: k[:-10] + "-" + k[-9:], id="non-base62 character"),
        pytest.param(lambda k: k.replace("_", "-"), id="wrong separators"),
        pytest.param(lambda k: k[:20] + " " + k[20:], id="inner whitespace"),
        pytest.param(lambda _k: "", id="empty"),
    ],
)
def test_malformed_key_is_refused(mangle: Callable[[str], str]) -> None:
    with pytest.raises(MalformedKey):
        ApiKeyCredential.parse(mangle(ApiKeyCredential.generate(KeyType.EXTERNAL, KEY_ID_WITH_LETTERS).reveal()))


def test_non_string_key_is_refused() -> None:
    with pytest.raises(MalformedKey):
        ApiKeyCredential.parse(None)  # type: ignore[arg-type]


def test_swapping_the_key_type_is_refused() -> None:
    key = revealed(KeyType.EXTERNAL)
    with pytest.raises(MalformedKey):
        ApiKeyCredential.parse(key.replace("spx_ex_", "spx_ad_", 1))


@pytest.mark.parametrize("render", [repr, str, lambda c: f"{c}", lambda c: f"{c!r}"])
def test_repr_and_str_never_contain_the_secret(render: Callable[[ApiKeyCredential], str]) -> None:
    credential = ApiKeyCredential.generate(KeyType.ADMIN)
    text = render(credential)
    assert credential.secret not in text
    assert credential.reveal() not in text
    assert credential.key_id in text


def test_hash_is_hmac_sha256_hex() -> None:
    digest = hash_credential(PEPPER, ApiKeyCredential.generate(KeyType.ADMIN))
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


def test_hash_is_deterministic_for_one_pepper() -> None:
    credential = ApiKeyCredential.generate(KeyType.ADMIN)
    assert hash_credential(PEPPER, credential) == hash_credential(PEPPER, credential)


def test_hash_matches_a_reference_hmac() -> None:
    credential = ApiKeyCredential.generate(KeyType.ADMIN)
    expected = hmac.new(PEPPER, credential.reveal().encode(), hashlib.sha256).hexdigest()
    assert hash_credential(PEPPER, credential) == expected


def test_hash_differs_with_another_pepper() -> None:
    credential = ApiKeyCredential.generate(KeyType.ADMIN)
    assert hash_credential(PEPPER, credential) != hash_credential(b"another-pepper", credential)


def test_hash_never_contains_the_secret() -> None:
    credential = ApiKeyCredential.generate(KeyType.ADMIN)
    assert credential.secret not in hash_credential(PEPPER, credential)


def test_credential_matches_its_own_hash() -> None:
    credential = ApiKeyCredential.generate(KeyType.EXTERNAL)
    assert credential_matches(PEPPER, credential, hash_credential(PEPPER, credential))


def test_credential_does_not_match_another_keys_hash() -> None:
    credential = ApiKeyCredential.generate(KeyType.EXTERNAL)
    other = ApiKeyCredential.generate(KeyType.EXTERNAL, credential.key_id)
    assert not credential_matches(PEPPER, credential, hash_credential(PEPPER, other))


def test_credential_does_not_match_a_hash_made_with_another_pepper() -> None:
    credential = ApiKeyCredential.generate(KeyType.EXTERNAL)
    assert not credential_matches(PEPPER, credential, hash_credential(b"another-pepper", credential))
