"""residentview: a single resident view for UK councils.

    import residentview as rv
    result = rv.link("configs/demo.yaml")
    result.links, result.residents
    result.write("out/")

The public names are imported on first use (PEP 562), so `import residentview` and the
command line's `--help` do not pay for loading Splink, and a standardising worker process that
imports one cleaner module starts quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "Config": "residentview.config",
    "load_config": "residentview.config",
    "ConfigError": "residentview.errors",
    "DataError": "residentview.errors",
    "ResidentViewError": "residentview.errors",
    "LinkResult": "residentview.pipeline",
    "link": "residentview.pipeline",
    "update": "residentview.incremental",
    "generate": "residentview.synthetic",
}

__all__ = sorted(_PUBLIC)

if TYPE_CHECKING:
    from residentview.config import Config, load_config
    from residentview.errors import ConfigError, DataError, ResidentViewError
    from residentview.pipeline import LinkResult, link
    from residentview.incremental import update
    from residentview.synthetic import generate


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'residentview' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
