"""The template is read once, with its short-form tags, and resolved to local names."""

from __future__ import annotations

import pytest

from spectra_local.template import IntrinsicResolver, Template, UnresolvableIntrinsic


def test_functions_come_with_handler_environment_and_routes(template: Template) -> None:
    functions = template.functions()
    api_keys = template.function_by_folder("api_keys")
    assert api_keys.handler == "app.lambda_handler"
    assert api_keys.environment["RECORDS_TABLE"] == {"Fn::Sub": "spectra-${Stage}-records"}
    assert ("POST", "/v2/api-keys") in {(e.method, e.path) for e in api_keys.api_events}
    assert {spec.name for spec in functions.values()} >= {"authorizer", "api_keys", "organization", "provisioning"}


def test_globals_are_merged_into_each_function(template: Template) -> None:
    for spec in template.functions().values():
        assert "ORG_DATA_ROLE_ARN" in spec.environment
        assert spec.properties["Runtime"] == "python3.13"


@pytest.mark.parametrize(
    ("value", "resolved"),
    [
        ({"Ref": "Table"}, "local-table"),
        ({"Fn::GetAtt": ["Role", "Arn"]}, "arn:aws:iam::123456789012:role/r"),
        ({"Fn::Sub": "${Table}/index/*"}, "local-table/index/*"),
        ({"Fn::Sub": "${Role.Arn}"}, "arn:aws:iam::123456789012:role/r"),
        ({"Fn::Sub": "ORG#${!aws:PrincipalTag/org}#*"}, "ORG#${aws:PrincipalTag/org}#*"),
        ({"Fn::Sub": ["${X}-${Table}", {"X": "a"}]}, "a-local-table"),
        ({"Fn::Join": ["-", ["a", {"Ref": "Table"}]]}, "a-local-table"),
        ({"Fn::Select": [1, ["a", "b"]]}, "b"),
        ({"Nested": [{"Ref": "Table"}]}, {"Nested": ["local-table"]}),
    ],
)
def test_intrinsics_resolve_to_local_values(value: object, resolved: object) -> None:
    resolver = IntrinsicResolver(
        refs={"Table": "local-table"},
        attributes={("Role", "Arn"): "arn:aws:iam::123456789012:role/r"},
    )
    assert resolver.resolve(value) == resolved


def test_unknown_reference_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnresolvableIntrinsic):
        IntrinsicResolver().resolve({"Ref": "Missing"})


def test_resolver_round_trips_through_json() -> None:
    resolver = IntrinsicResolver(refs={"A": "x"}, attributes={("B", "Arn"): "y"})
    assert IntrinsicResolver.from_json(resolver.to_json()) == resolver
