"""Load and invoke Spectra functions in-process, each with its own template environment.

A function's module is imported from its ``CodeUri`` folder under a unique name, with the
environment variables the template gives it; invocations hold a lock while that environment is
in place, because a process has one ``os.environ`` (Lambda itself runs one request per
container at a time, so this is also what production does).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from spectra.config import get_settings
from spectra_local.template import FunctionSpec

_ENVIRONMENT_LOCK = threading.RLock()


@contextmanager
def function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` for the duration of the block (and restore what was there)."""
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 10
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    invoked_function_arn: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


@dataclass
class LocalFunction:
    """One template function, imported once, invoked as Lambda would invoke it."""

    spec: FunctionSpec
    environment: Mapping[str, str]
    module: ModuleType | None = None

    def load(self) -> ModuleType:
        if self.module is None:
            module_file, _, _ = self.spec.handler.rpartition(".")
            path = self.spec.code_uri / f"{module_file.replace('.', '/')}.py"
            name = f"spectra_fn_{self.spec.name}_{uuid.uuid4().hex[:8]}"
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(loader_spec)
            with function_environment(self.environment):
                # Each Lambda container reads its own settings; in one process, re-read them
                # for every function so module-level objects see this function's variables.
                get_settings.cache_clear()
                sys.modules[name] = module
                loader_spec.loader.exec_module(module)
            self.module = module
        return self.module

    def unload(self) -> None:
        """Forget the loaded module (a discarded container): nothing keeps its clients alive."""
        if self.module is not None:
            sys.modules.pop(self.module.__name__, None)
            self.module = None

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """Run the handler with a fresh context, under the function's environment."""
        handler_name = self.spec.handler.rpartition(".")[2]
        handler = getattr(self.load(), handler_name)
        context = LambdaContext(
            function_name=self.spec.logical_id,
            timeout_seconds=int(self.spec.properties.get("Timeout", 10)),
            memory_limit_in_mb=int(self.spec.properties.get("MemorySize", 512)),
            invoked_function_arn=f"arn:aws:lambda:local:123456789012:function:{self.spec.logical_id}",
        )
        with function_environment(self.environment):
            return handler(dict(event), context)
