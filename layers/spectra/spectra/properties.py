"""Property definitions (a thing type version's schema for thing properties) and their checks.

A property definition is ``{name, valueType, unit, description, required, constraints}`` where
``valueType`` is String|Int|Double|Bool|Json and ``constraints`` may hold ``min``/``max``
(numbers), ``minLength``/``maxLength``/``pattern`` (strings) and ``enum`` (any scalar type).
``validate_properties`` checks a thing's ``properties`` against a version's definitions and
lists every problem at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import regex
from pydantic import Field, model_validator

from spectra.errors import FieldError
from spectra.metric_values import DataType, UncoercibleValue, coerce
from spectra.models.common import RequestModel

PATTERN_TIMEOUT_SECONDS = 0.05
PropertyName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$", description="Identifier-like name")]


class PropertyConstraints(RequestModel):
    min: float | None = None
    max: float | None = None
    minLength: int | None = Field(default=None, ge=0, le=4096)
    maxLength: int | None = Field(default=None, ge=0, le=4096)
    pattern: str | None = Field(default=None, max_length=500, description="A regex the whole value must match")
    enum: list[str | int | float | bool] | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> PropertyConstraints:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        if self.minLength is not None and self.maxLength is not None and self.minLength > self.maxLength:
            raise ValueError("minLength must not be greater than maxLength")
        if self.pattern is not None:
            try:
                regex.compile(self.pattern)
            except regex.error as error:
                raise ValueError(f"pattern is not a valid regular expression: {error}") from error
        return self


class PropertyDefinition(RequestModel):
    name: PropertyName
    valueType: DataType
    unit: str | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=1000)
    required: bool = False
    constraints: PropertyConstraints | None = None

    @model_validator(mode="after")
    def _constraints_fit_type(self) -> PropertyDefinition:
        rules = self.constraints
        if rules is None:
            return self
        numeric = self.valueType in (DataType.INT, DataType.DOUBLE)
        if (rules.min is not None or rules.max is not None) and not numeric:
            raise ValueError("min/max apply to Int and Double properties only")
        textual = (rules.minLength, rules.maxLength, rules.pattern) != (None, None, None)
        if textual and self.valueType != DataType.STRING:
            raise ValueError("minLength/maxLength/pattern apply to String properties only")
        if rules.enum is not None:
            if self.valueType == DataType.JSON:
                raise ValueError("enum does not apply to Json properties")
            try:
                rules.enum = [coerce(value, self.valueType) for value in rules.enum]
            except UncoercibleValue as error:
                raise ValueError(f"enum value does not fit {self.valueType.value}: {error}") from error
        return self


def unique_property_names(definitions: Sequence[PropertyDefinition]) -> list[FieldError]:
    """Problems with duplicate names (case-insensitive) in one version's definitions."""
    seen: dict[str, int] = {}
    problems = []
    for index, definition in enumerate(definitions):
        key = definition.name.casefold()
        if key in seen:
            problems.append(FieldError(f"propertyDefinitions[{index}].name", f"duplicates {definition.name!r}"))
        seen[key] = index
    return problems


def validate_properties(
    definitions: Sequence[Mapping[str, Any]],
    values: Mapping[str, Any],
    *,
    field: str = "properties",
    partial: bool = False,
) -> tuple[dict[str, Any], list[FieldError]]:
    """Coerce ``values`` against the definitions; returns the clean values and every problem.

    Unknown names are errors (a typo must not pass silently); required properties must be
    present unless ``partial`` (a PATCH that leaves them as they are).
    """
    by_name = {str(d["name"]): PropertyDefinition.model_validate(d) for d in definitions}
    clean: dict[str, Any] = {}
    problems: list[FieldError] = []
    for name, raw in values.items():
        definition = by_name.get(name)
        if definition is None:
            problems.append(FieldError(f"{field}.{name}", "is not defined by the thing type version"))
            continue
        try:
            value = coerce(raw, definition.valueType)
        except UncoercibleValue as error:
            problems.append(FieldError(f"{field}.{name}", str(error)))
            continue
        problem = _constraint_problem(definition, value)
        if problem:
            problems.append(FieldError(f"{field}.{name}", problem))
            continue
        clean[name] = value
    if not partial:
        for name, definition in by_name.items():
            if definition.required and name not in values:
                problems.append(FieldError(f"{field}.{name}", "is required"))
    return clean, problems


def _constraint_problem(definition: PropertyDefinition, value: Any) -> str | None:
    rules = definition.constraints
    if rules is None:
        return None
    if rules.min is not None and value < rules.min:
        return f"must be at least {_number(rules.min)}"
    if rules.max is not None and value > rules.max:
        return f"must be at most {_number(rules.max)}"
    if rules.minLength is not None and len(value) < rules.minLength:
        return f"must be at least {rules.minLength} characters"
    if rules.maxLength is not None and len(value) > rules.maxLength:
        return f"must be at most {rules.maxLength} characters"
    if rules.pattern is not None:
        try:
            # Patterns come from customers: bound the time one match may take (no ReDoS).
            if regex.fullmatch(rules.pattern, value, timeout=PATTERN_TIMEOUT_SECONDS) is None:
                return "does not match the pattern"
        except TimeoutError:
            return "could not be checked against the pattern in time; simplify the pattern"
    if rules.enum is not None and value not in rules.enum:
        return "is not one of the allowed values"
    return None


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
