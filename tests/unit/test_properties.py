"""Property definitions: a thing type version's schema for thing properties, and how values are checked."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from spectra.errors import FieldError
from spectra.properties import PropertyDefinition, unique_property_names, validate_properties


def definition(name: str = "serial", value_type: str = "String", **fields: Any) -> dict[str, Any]:
    """A property definition as the API receives it."""
    return {"name": name, "valueType": value_type, **fields}


def constrained(value_type: str, **constraints: Any) -> dict[str, Any]:
    return definition("value", value_type, constraints=constraints)


def messages(problems: list[FieldError]) -> dict[str, str]:
    return {problem.field: problem.message for problem in problems}


# -- PropertyDefinition ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "serial", "Serial_2", "x" * 64, "A_b_C"])
def test_property_name_may_be_identifier_like(name: str) -> None:
    assert PropertyDefinition.model_validate(definition(name)).name == name


@pytest.mark.parametrize("name", ["", "1serial", "_serial", "serial-no", "serial no", "sérial", "x" * 65])
def test_property_name_must_be_identifier_like(name: str) -> None:
    with pytest.raises(ValidationError) as raised:
        PropertyDefinition.model_validate(definition(name))
    assert raised.value.errors()[0]["loc"] == ("name",)


@pytest.mark.parametrize("value_type", ["String", "Int", "Double", "Bool", "Json"])
def test_value_type_may_be_any_data_type(value_type: str) -> None:
    assert PropertyDefinition.model_validate(definition(value_type=value_type)).valueType == value_type


@pytest.mark.parametrize("value_type", ["Float", "string", "", "Enum"])
def test_value_type_must_be_a_data_type(value_type: str) -> None:
    with pytest.raises(ValidationError) as raised:
        PropertyDefinition.model_validate(definition(value_type=value_type))
    assert raised.value.errors()[0]["loc"] == ("valueType",)


def test_min_greater_than_max_is_refused() -> None:
    with pytest.raises(ValidationError, match="min must not be greater than max"):
        PropertyDefinition.model_validate(constrained("Double", min=10, max=1))


def test_min_equal_to_max_is_accepted() -> None:
    rules = PropertyDefinition.model_validate(constrained("Int", min=5, max=5)).constraints
    assert rules is not None
    assert (rules.min, rules.max) == (5, 5)


def test_min_length_greater_than_max_length_is_refused() -> None:
    with pytest.raises(ValidationError, match="minLength must not be greater than maxLength"):
        PropertyDefinition.model_validate(constrained("String", minLength=5, maxLength=2))


def test_invalid_regex_pattern_is_refused() -> None:
    with pytest.raises(ValidationError, match="pattern is not a valid regular expression"):
        PropertyDefinition.model_validate(constrained("String", pattern="([a-z"))


@pytest.mark.parametrize("value_type", ["String", "Bool", "Json"])
@pytest.mark.parametrize("bound", ["min", "max"])
def test_min_and_max_apply_only_to_numeric_properties(value_type: str, bound: str) -> None:
    with pytest.raises(ValidationError, match="min/max apply to Int and Double properties only"):
        PropertyDefinition.model_validate(constrained(value_type, **{bound: 1}))


@pytest.mark.parametrize("value_type", ["Int", "Double", "Bool", "Json"])
@pytest.mark.parametrize("rule", [{"pattern": "^[a-z]+$"}, {"minLength": 1}, {"maxLength": 10}])
def test_length_and_pattern_apply_only_to_string_properties(value_type: str, rule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="minLength/maxLength/pattern apply to String properties only"):
        PropertyDefinition.model_validate(constrained(value_type, **rule))


@pytest.mark.parametrize(
    ("value_type", "enum", "expected"),
    [
        ("Int", [1, "2", 3.0], [1, 2, 3]),
        ("Double", [1, "2.5"], [1.0, 2.5]),
        ("String", ["a", 1, True], ["a", "1", "true"]),
        ("Bool", [True, "false"], [True, False]),
    ],
)
def test_enum_values_are_coerced_to_the_value_type(value_type: str, enum: list[Any], expected: list[Any]) -> None:
    rules = PropertyDefinition.model_validate(constrained(value_type, enum=enum)).constraints
    assert rules is not None
    assert rules.enum == expected
    assert [type(value) for value in rules.enum] == [type(value) for value in expected]


@pytest.mark.parametrize(
    ("value_type", "enum"),
    [("Int", [1, 2.5]), ("Int", [True]), ("Int", ["one"]), ("Double", ["fast"]), ("Bool", ["yes"]), ("Bool", [2])],
)
def test_enum_values_that_do_not_fit_the_type_are_refused(value_type: str, enum: list[Any]) -> None:
    with pytest.raises(ValidationError, match=f"enum value does not fit {value_type}"):
        PropertyDefinition.model_validate(constrained(value_type, enum=enum))


def test_enum_on_json_properties_is_refused() -> None:
    with pytest.raises(ValidationError, match="enum does not apply to Json properties"):
        PropertyDefinition.model_validate(constrained("Json", enum=["a"]))


def test_empty_enum_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        PropertyDefinition.model_validate(constrained("String", enum=[]))
    assert raised.value.errors()[0]["loc"] == ("constraints", "enum")


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"default": "x"}, ("default",)),
        ({"constraints": {"minimum": 1}}, ("constraints", "minimum")),
    ],
)
def test_unknown_fields_are_refused(fields: dict[str, Any], loc: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as raised:
        PropertyDefinition.model_validate(definition(**fields))
    error = raised.value.errors()[0]
    assert (error["type"], error["loc"]) == ("extra_forbidden", loc)


# -- unique_property_names ---------------------------------------------------------------------


def test_distinct_property_names_have_no_problems() -> None:
    definitions = [PropertyDefinition.model_validate(definition(name)) for name in ("serial", "model", "firmware")]
    assert unique_property_names(definitions) == []


def test_names_differing_only_in_case_are_duplicates_reported_at_their_index() -> None:
    names = ("serial", "model", "Serial", "MODEL", "firmware", "SERIAL")
    definitions = [PropertyDefinition.model_validate(definition(name)) for name in names]
    assert unique_property_names(definitions) == [
        FieldError("propertyDefinitions[2].name", "duplicates 'Serial'"),
        FieldError("propertyDefinitions[3].name", "duplicates 'MODEL'"),
        FieldError("propertyDefinitions[5].name", "duplicates 'SERIAL'"),
    ]


# -- validate_properties -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value_type", "raw", "expected"),
    [
        ("Int", "42", 42),
        ("Double", "2.5", 2.5),
        ("Bool", "TRUE", True),
        ("String", 7, "7"),
        ("Json", {"a": [1]}, {"a": [1]}),
    ],
)
def test_values_are_coerced_to_their_property_type(value_type: str, raw: Any, expected: Any) -> None:
    clean, problems = validate_properties([definition("value", value_type)], {"value": raw})
    assert problems == []
    assert clean == {"value": expected}
    assert type(clean["value"]) is type(expected)


def test_uncoercible_value_is_reported_with_the_reason() -> None:
    clean, problems = validate_properties([definition("count", "Int")], {"count": "many"})
    assert clean == {}
    assert messages(problems) == {"properties.count": "'many' is not an integer"}


def test_unknown_property_is_an_error() -> None:
    clean, problems = validate_properties([definition("serial")], {"serial": "A1", "colour": "red"})
    assert clean == {"serial": "A1"}
    assert messages(problems) == {"properties.colour": "is not defined by the thing type version"}


def test_missing_required_property_is_an_error() -> None:
    _, problems = validate_properties([definition("serial", required=True)], {})
    assert messages(problems) == {"properties.serial": "is required"}


def test_missing_required_property_is_allowed_when_partial() -> None:
    clean, problems = validate_properties([definition("serial", required=True)], {}, partial=True)
    assert (clean, problems) == ({}, [])


def test_missing_optional_property_is_not_an_error() -> None:
    assert validate_properties([definition("serial")], {}) == ({}, [])


def test_problems_are_reported_under_the_given_field() -> None:
    _, problems = validate_properties([definition("serial", required=True)], {}, field="body.properties")
    assert [problem.field for problem in problems] == ["body.properties.serial"]


@pytest.mark.parametrize(
    ("value_type", "constraints", "raw", "message"),
    [
        ("Int", {"min": 0}, -1, "must be at least 0"),
        ("Double", {"max": 1.5}, 2, "must be at most 1.5"),
        ("String", {"minLength": 3}, "ab", "must be at least 3 characters"),
        ("String", {"maxLength": 3}, "abcd", "must be at most 3 characters"),
        ("String", {"pattern": "[A-Z]{2}[0-9]+"}, "AB12x", "does not match the pattern"),
        ("String", {"enum": ["red", "green"]}, "blue", "is not one of the allowed values"),
        ("Int", {"enum": [1, 2]}, 3, "is not one of the allowed values"),
        ("Bool", {"enum": [True]}, "false", "is not one of the allowed values"),
    ],
)
def test_constraint_violation_is_reported(value_type: str, constraints: dict[str, Any], raw: Any, message: str) -> None:
    clean, problems = validate_properties([constrained(value_type, **constraints)], {"value": raw})
    assert clean == {}
    assert messages(problems) == {"properties.value": message}


@pytest.mark.parametrize(
    ("value_type", "constraints", "raw", "expected"),
    [
        ("Int", {"min": 0, "max": 10}, "10", 10),
        ("Double", {"min": -1.5}, -1.5, -1.5),
        ("String", {"minLength": 2, "maxLength": 2, "pattern": "[A-Z]{2}"}, "AB", "AB"),
        ("String", {"enum": ["1", "2"]}, 2, "2"),
        ("Double", {"enum": [1, 2.5]}, "2.5", 2.5),
        ("Bool", {"enum": [True]}, 1, True),
    ],
)
def test_values_within_their_constraints_are_kept(
    value_type: str, constraints: dict[str, Any], raw: Any, expected: Any
) -> None:
    clean, problems = validate_properties([constrained(value_type, **constraints)], {"value": raw})
    assert problems == []
    assert clean == {"value": expected}


def test_pattern_must_match_the_whole_value() -> None:
    _, problems = validate_properties([constrained("String", pattern="[0-9]+")], {"value": "12ab"})
    assert messages(problems) == {"properties.value": "does not match the pattern"}


def test_bound_violation_states_the_exact_bound() -> None:
    _, problems = validate_properties([constrained("Int", min=1234567)], {"value": 1})
    assert messages(problems) == {"properties.value": "must be at least 1234567"}


def test_every_problem_is_listed_at_once() -> None:
    definitions = [
        definition("serial", required=True),
        definition("count", "Int", constraints={"min": 0}),
        definition("ratio", "Double"),
        definition("colour", constraints={"enum": ["red"]}),
        definition("code", constraints={"pattern": "[A-Z]+"}),
        definition("note"),
    ]
    values = {"count": -5, "ratio": "high", "colour": "blue", "code": "ab", "size": 3, "note": "ok"}
    clean, problems = validate_properties(definitions, values)
    assert clean == {"note": "ok"}
    assert messages(problems) == {
        "properties.serial": "is required",
        "properties.count": "must be at least 0",
        "properties.ratio": "'high' is not a number",
        "properties.colour": "is not one of the allowed values",
        "properties.code": "does not match the pattern",
        "properties.size": "is not defined by the thing type version",
    }


def test_clean_values_are_returned_coerced_when_all_are_valid() -> None:
    definitions = [
        definition("serial", required=True, constraints={"pattern": "SN-[0-9]+"}),
        definition("count", "Int", constraints={"min": 0, "max": 100}),
        definition("active", "Bool"),
        definition("meta", "Json"),
    ]
    values = {"serial": "SN-42", "count": "7", "active": "true", "meta": [1, {"a": None}]}
    assert validate_properties(definitions, values) == (
        {"serial": "SN-42", "count": 7, "active": True, "meta": [1, {"a": None}]},
        [],
    )
