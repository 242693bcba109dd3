"""The standard application, and how the CLI finds the application to run (`--app` / `CONVEYOR_APP`).

`create_app()` builds the `Conveyor` that `conveyor up` and `conveyor worker` run when no other app is named:
the three standard queues with the handlers of Conveyor's own domain packages. Each domain package exposes a
`register(app)` function; adding one is a line in `_DOMAIN_PACKAGES`.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable

from conveyor.app import Conveyor
from conveyor.config import ConfigError, Settings
from conveyor.errors import ConveyorError

APP_ENV_VAR = "CONVEYOR_APP"
DEFAULT_APP = "conveyor.standard:create_app"

Register = Callable[[Conveyor], None]

# The domain packages whose handlers the standard app serves, each with a `jobs.register(app)` function.
# Imported by `create_app` only: a worker of another app (`--app`) never loads the indexer or the AI features.
_DOMAIN_PACKAGES: tuple[str, ...] = ("conveyor.indexer.jobs", "conveyor.ai.jobs", "conveyor.maintenance.jobs")


class AppLoadError(ConfigError):
    """The application named by `--app` / `CONVEYOR_APP` cannot be imported or is not a Conveyor."""


def create_app(settings: Settings | None = None) -> Conveyor:
    """The standard application: settings from the environment and every built-in handler registered.

    Args:
        settings: explicit settings; read from the environment (and `.env`) when None.
    """
    app = Conveyor(settings)
    for package in _DOMAIN_PACKAGES:
        register: Register = importlib.import_module(package).register
        register(app)
    return app


def load_app(spec: str | None = None) -> Conveyor:
    """The application named by `spec` (`"package.module:attr"`), else by `CONVEYOR_APP`, else the standard one.

    `attr` may be a `Conveyor` or a zero-argument factory returning one (dotted attribute paths work too:
    `"myproject.jobs:factories.make_app"`). The module is imported with the current directory first on
    `sys.path`, as `uvicorn` and `celery -A` do, so `--app myapp:app` finds `./myapp.py` without PYTHONPATH.

    Raises:
        AppLoadError: the module cannot be imported, the attribute is missing, or it is not a Conveyor.
        ConfigError: the factory read invalid settings.
    """
    spec = spec or os.environ.get(APP_ENV_VAR) or DEFAULT_APP
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise AppLoadError(f"Invalid app {spec!r}: use 'package.module:attribute' (e.g. {DEFAULT_APP}).")
    target = _resolve(spec, module_name, attr_path)
    if not isinstance(target, Conveyor) and callable(target):
        try:
            inspect.signature(target).bind()
        except TypeError:
            raise AppLoadError(f"App {spec!r} needs arguments; name a zero-argument factory.") from None
        except ValueError:
            pass  # no signature to inspect (a builtin): just call it
        target = target()
    if not isinstance(target, Conveyor):
        raise AppLoadError(f"App {spec!r} is a {type(target).__name__}, not a Conveyor (or a factory returning one).")
    return target


def _resolve(spec: str, module_name: str, attr_path: str) -> object:
    here = os.getcwd()
    if sys.path[:1] != [here]:
        sys.path.insert(0, here)
    try:
        target: object = importlib.import_module(module_name)
    except ConveyorError:
        raise  # e.g. invalid settings read at import time: reported as they are
    except Exception as exc:  # an import error, or any error raised while importing the user's module
        raise AppLoadError(
            f"Cannot import {module_name!r} for app {spec!r} ({type(exc).__name__}: {exc}). "
            f"Check --app / {APP_ENV_VAR}: the module is looked up in the current directory, then on PYTHONPATH."
        ) from exc
    for name in attr_path.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise AppLoadError(f"App {spec!r}: {module_name!r} has no attribute {attr_path!r}.") from None
    return target
