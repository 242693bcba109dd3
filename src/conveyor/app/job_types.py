"""Payload models of job types, known without their handlers, so that a producer validates what it adds.

A worker knows a job type's model from its handler (`@app.handler(..., payload=Model)`). A producer often runs
no handlers: a web process that enqueues, a script, the CLI with a custom `--app`. It declares the model with
`app.job_type(queue, type, payload=Model)` and its `add` is checked as the worker's would be.

The standard queues' job types (indexing, ai-processing, background) are declared by their domain packages'
`declare(app)`. Every `Conveyor` knows them without registering anything: the first time it validates a job
for a standard queue whose type it has no model for, it runs that queue's `declare` (imported by name here,
as the domain packages sit above this layer and import it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel

# The standard queue -> its domain package's `declare(app)`, as "module:function".
STANDARD_DECLARATIONS = {
    "indexing": "conveyor.indexer.jobs:declare",
    "ai-processing": "conveyor.ai.jobs:declare",
    "background": "conveyor.maintenance.jobs:declare",
}


class Declaring(Protocol):
    """What a `declare` function receives (a `Conveyor`)."""

    def job_type(self, queue: str, job_type: str, *, payload: type[BaseModel]) -> None: ...


class PayloadModels:
    """Declared payload models by (queue, job type), with the standard ones declared on first need."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], type[BaseModel]] = {}
        self._declared_standard: set[str] = set()

    def declare(self, queue: str, job_type: str, model: type[BaseModel]) -> None:
        """Record the model of a job type (a later declaration replaces an earlier one)."""
        self.models[(queue, job_type)] = model

    def model(self, app: Declaring, queue: str, job_type: str) -> type[BaseModel] | None:
        """The declared model of a job type, declaring the standard queue's types first if need be."""
        if (queue, job_type) not in self.models and queue in STANDARD_DECLARATIONS:
            self._declare_standard(app, queue)
        return self.models.get((queue, job_type))

    def _declare_standard(self, app: Declaring, queue: str) -> None:
        if queue in self._declared_standard:
            return
        self._declared_standard.add(queue)
        known = dict(self.models)
        _load(STANDARD_DECLARATIONS[queue])(app)
        self.models.update(known)  # the app's own declarations win over the standard ones


def _load(spec: str) -> Callable[[Any], None]:
    module, _, name = spec.partition(":")
    declare: Callable[[Any], None] = getattr(importlib.import_module(module), name)
    return declare
