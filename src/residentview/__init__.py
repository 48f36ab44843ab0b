"""residentview: a single resident view for UK councils.

    import residentview as rv
    result = rv.link("configs/demo.yaml")
    result.links, result.residents
    result.write("out/")
"""

from residentview.config import Config, load_config
from residentview.errors import ConfigError, DataError, ResidentViewError
from residentview.pipeline import LinkResult, link
from residentview.synthetic import generate

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "LinkResult",
    "ResidentViewError",
    "generate",
    "link",
    "load_config",
]
