"""Read ``template.yaml`` once, with CloudFormation's short-form tags, and resolve intrinsics.

Nothing about tables, functions, routes or environment variables is written down a second
time: the local runtime and the tests derive all of it from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "Cidr": "Fn::Cidr",
}


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that understands ``!Ref``, ``!GetAtt``, ``!Sub`` and the other short tags."""


def _construct(tag: str, full_name: str) -> None:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {full_name: value}

    _CloudFormationLoader.add_constructor(f"!{tag}", construct)


for _tag, _full in _SHORT_TAGS.items():
    _construct(_tag, _full)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data, short tags turned into their long ``Fn::`` forms."""
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return document


class UnresolvableIntrinsic(ValueError):
    """An intrinsic function the local runtime has no value for."""


_NO_VALUE: Any = object()
"""What ``Fn::If`` yields for ``AWS::NoValue``: the list item or property is left out."""


@dataclass
class IntrinsicResolver:
    """Resolves intrinsics against local values: ``refs`` for ``!Ref``, ``attributes`` for ``!GetAtt``."""

    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    """The template's conditions, evaluated (``evaluate_conditions``) for ``Fn::If`` and ``Condition``."""

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Fn::If":
                condition, when_true, when_false = argument
                chosen = when_true if self.holds(str(condition)) else when_false
                return _NO_VALUE if chosen == {"Ref": "AWS::NoValue"} else self.resolve(chosen)
            if name == "Ref":
                return self._ref(str(argument))
            if name == "Fn::GetAtt":
                logical, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
                return self._attribute(str(logical), str(attribute))
            if name == "Fn::Sub":
                return self._sub(argument)
            if name == "Fn::Join":
                separator, items = argument
                return str(separator).join(str(self.resolve(item)) for item in self.resolve(items))
            if name == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if name == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if name.startswith("Fn::"):
                raise UnresolvableIntrinsic(name)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def evaluate_conditions(self, definitions: Mapping[str, Any]) -> dict[str, bool]:
        """Evaluate a template's ``Conditions`` against ``refs`` (parameters, pseudo parameters)."""
        self.conditions = {}

        def evaluate(name: str, visiting: frozenset[str]) -> bool:
            if name not in self.conditions:
                if name in visiting:
                    raise UnresolvableIntrinsic(f"condition {name} refers to itself")
                self.conditions[name] = self._truth(definitions[name], lambda other: evaluate(other, visiting | {name}))
            return self.conditions[name]

        for name in definitions:
            evaluate(name, frozenset())
        return self.conditions

    def holds(self, condition: str) -> bool:
        """Whether a named condition is true (evaluated by ``evaluate_conditions``)."""
        if condition not in self.conditions:
            raise UnresolvableIntrinsic(f"Condition {condition}")
        return self.conditions[condition]

    def _truth(self, expression: Any, condition: Any) -> bool:
        ((name, argument),) = expression.items()
        if name == "Condition":
            return bool(condition(str(argument)))
        if name == "Fn::Equals":
            left, right = (self.resolve(side) for side in argument)
            return bool(left == right)
        if name == "Fn::Not":
            return not self._truth(argument[0], condition)
        if name == "Fn::And":
            return all(self._truth(item, condition) for item in argument)
        if name == "Fn::Or":
            return any(self._truth(item, condition) for item in argument)
        raise UnresolvableIntrinsic(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe copy, so another process can resolve the same local names."""
        return {
            "refs": self.refs,
            "attributes": {f"{logical}.{attribute}": value for (logical, attribute), value in self.attributes.items()},
            "conditions": self.conditions,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IntrinsicResolver:
        attributes = {tuple(key.split(".", 1)): value for key, value in data.get("attributes", {}).items()}
        return cls(refs=dict(data.get("refs", {})), attributes=attributes, conditions=dict(data.get("conditions", {})))

    def _ref(self, name: str) -> Any:
        if name not in self.refs:
            raise UnresolvableIntrinsic(f"Ref {name}")
        return self.refs[name]

    def _attribute(self, logical: str, attribute: str) -> Any:
        if (logical, attribute) not in self.attributes:
            raise UnresolvableIntrinsic(f"GetAtt {logical}.{attribute}")
        return self.attributes[(logical, attribute)]

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and expression.split(".", 1)[0] in self._logical_ids():
                logical, attribute = expression.split(".", 1)
                return str(self._attribute(logical, attribute))
            return str(self._ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))

    def _logical_ids(self) -> set[str]:
        return {logical for logical, _ in self.attributes} | set(self.refs)


@dataclass(frozen=True)
class ApiEvent:
    """One ``Type: Api`` event of a function: a route of the REST API."""

    name: str
    method: str
    path: str


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: Mapping[str, Any]
    api_events: tuple[ApiEvent, ...]
    schedules: tuple[Mapping[str, Any], ...]
    properties: Mapping[str, Any]
    queue_events: tuple[Mapping[str, Any], ...] = ()
    """``Type: SQS`` events: the queue (an intrinsic) and the event source's settings."""

    @property
    def name(self) -> str:
        """The function's folder name under ``functions/`` (e.g. ``api_keys``)."""
        return self.code_uri.name


class Template:
    """The parts of ``template.yaml`` the local runtime and the tests need."""

    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        self.path = path
        self.document = load_template(path)
        self.resources: dict[str, dict[str, Any]] = self.document.get("Resources", {})

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r.get("Type") == resource_type}

    def parameter_defaults(self) -> dict[str, Any]:
        """Each parameter's default, a ``CommaDelimitedList`` as the list CloudFormation makes of it."""
        return {
            name: str(spec.get("Default", "")).split(",")
            if spec.get("Type") == "CommaDelimitedList"
            else spec.get("Default")
            for name, spec in self.document.get("Parameters", {}).items()
        }

    def conditions(self) -> dict[str, Any]:
        """The template's ``Conditions`` section (unevaluated)."""
        return dict(self.document.get("Conditions", {}) or {})

    def functions(self) -> dict[str, FunctionSpec]:
        """Every ``AWS::Serverless::Function`` with Globals merged in (environment, handler)."""
        global_function = self.document.get("Globals", {}).get("Function", {})
        global_env = global_function.get("Environment", {}).get("Variables", {})
        specs: dict[str, FunctionSpec] = {}
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            properties = {**global_function, **resource.get("Properties", {})}
            environment = {**global_env, **properties.get("Environment", {}).get("Variables", {})}
            events = properties.get("Events", {}) or {}
            api_events = tuple(
                ApiEvent(name=name, method=str(e["Properties"]["Method"]).upper(), path=e["Properties"]["Path"])
                for name, e in events.items()
                if e.get("Type") == "Api"
            )
            schedules = tuple(
                {"name": name, **e.get("Properties", {})}
                for name, e in events.items()
                if e.get("Type") in {"Schedule", "ScheduleV2"}
            )
            queue_events = tuple(
                {"name": name, **e.get("Properties", {})} for name, e in events.items() if e.get("Type") == "SQS"
            )
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=(self.path.parent / str(properties["CodeUri"])).resolve(),
                handler=str(properties["Handler"]),
                environment=environment,
                api_events=api_events,
                schedules=schedules,
                properties=properties,
                queue_events=queue_events,
            )
        return specs

    def function_by_folder(self, folder: str) -> FunctionSpec:
        for spec in self.functions().values():
            if spec.name == folder:
                return spec
        raise KeyError(f"no function with CodeUri functions/{folder}/")
