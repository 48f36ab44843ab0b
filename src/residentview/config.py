"""The linkage config (CONTRACT §1): YAML in, a validated `Config` out, one-line errors.

Every error names the config file, the key path (``sources.council_tax.fields.frist_name``), what
was found and what was expected. Unknown keys are errors: a typo must never be silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from residentview.errors import ConfigError
from residentview.fields import CANONICAL_FIELDS, NAME_FIELDS, RUN_NAME_RE, SOURCE_NAME_RE

SUPPORTED_EXTENSIONS = (".csv", ".parquet", ".xlsx")


class FieldSpec(BaseModel):
    """Where a canonical field comes from: one column, several joined with ", ", and a date format."""

    model_config = ConfigDict(extra="forbid")

    column: Union[str, list[str]]
    format: Optional[str] = None

    @property
    def columns(self) -> list[str]:
        return [self.column] if isinstance(self.column, str) else list(self.column)

    @field_validator("column")
    @classmethod
    def _columns_not_blank(cls, value):
        cols = [value] if isinstance(value, str) else value
        if not cols or any(not str(c).strip() for c in cols):
            raise ValueError("expected a non-empty column name")
        return value


def _as_field_spec(value: Any) -> Any:
    if isinstance(value, str) or isinstance(value, list):
        return {"column": value}
    return value


class SourceFields(BaseModel):
    """Canonical field -> source column(s). At least one name field must be mapped."""

    model_config = ConfigDict(extra="forbid")

    title: Optional[FieldSpec] = None
    full_name: Optional[FieldSpec] = None
    first_name: Optional[FieldSpec] = None
    middle_names: Optional[FieldSpec] = None
    last_name: Optional[FieldSpec] = None
    previous_last_name: Optional[FieldSpec] = None
    date_of_birth: Optional[FieldSpec] = None
    sex: Optional[FieldSpec] = None
    address: Optional[FieldSpec] = None
    postcode: Optional[FieldSpec] = None
    uprn: Optional[FieldSpec] = None
    nhs_number: Optional[FieldSpec] = None
    ni_number: Optional[FieldSpec] = None
    phone: Optional[FieldSpec] = None
    email: Optional[FieldSpec] = None
    record_date: Optional[FieldSpec] = None
    identifiers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _normalise_specs(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            key: (value if key == "identifiers" else _as_field_spec(value))
            for key, value in data.items()
        }

    @field_validator("identifiers")
    @classmethod
    def _identifier_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, column in value.items():
            if not SOURCE_NAME_RE.match(name):
                raise ValueError(
                    f"identifier name {name!r} must be letters, digits and '_' starting with a letter"
                )
            if not str(column).strip():
                raise ValueError(f"identifier {name!r} needs a column name")
        return value

    @model_validator(mode="after")
    def _needs_a_name(self) -> "SourceFields":
        if not any(getattr(self, f) is not None for f in NAME_FIELDS):
            raise ValueError(
                "a source must map at least one name field (" + ", ".join(NAME_FIELDS) + ")"
            )
        return self

    def mapped(self) -> dict[str, FieldSpec]:
        """The canonical fields this source maps (identifiers excluded), in canonical order."""
        return {
            name: getattr(self, name)
            for name in CANONICAL_FIELDS
            if name != "identifiers" and getattr(self, name) is not None
        }


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path
    id: str
    encoding: str = "auto"
    sheet: Optional[Union[str, int]] = None
    fields: SourceFields

    @field_validator("path")
    @classmethod
    def _supported_extension(cls, value: Path) -> Path:
        if value.suffix.lower() not in SUPPORTED_EXTENSIONS:
            raise ValueError(
                f"unsupported file type {value.suffix or '(none)'!r}; expected one of "
                + ", ".join(SUPPORTED_EXTENSIONS)
            )
        return value

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected the name of the source's record id column")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding {value!r}; expected auto, utf-8, cp1252, latin-1 …")
        return value

    def date_format(self, field: str) -> Optional[str]:
        spec = getattr(self.fields, field)
        return spec.format if spec is not None else None


class LinkageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.95, gt=0.0, lt=1.0)
    model: Optional[Path] = None
    seed: int = 42
    max_pairs_per_rule: int = Field(20_000_000, gt=0)
    training_sample_size: int = Field(300_000, gt=0)


class ResidentViewConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_priority: list[str] = Field(default_factory=list)


class Config(BaseModel):
    """A validated linkage config. `base_dir` is the folder relative paths are resolved from."""

    model_config = ConfigDict(extra="forbid")

    name: str
    sources: dict[str, SourceConfig]
    linkage: LinkageConfig = Field(default_factory=LinkageConfig)
    resident_view: ResidentViewConfig = Field(default_factory=ResidentViewConfig)
    output: Optional[Path] = None
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    config_path: Optional[Path] = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        if not RUN_NAME_RE.match(value):
            raise ValueError("expected letters, digits, '_' and '-' only")
        return value

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        if not value:
            raise ValueError("expected at least one source")
        for name in value:
            if not SOURCE_NAME_RE.match(str(name)):
                raise ValueError(
                    f"source name {name!r} must be letters, digits and '_' starting with a letter"
                )
        return value

    @model_validator(mode="after")
    def _priority_names_known(self) -> "Config":
        unknown = [s for s in self.resident_view.source_priority if s not in self.sources]
        if unknown:
            raise ValueError(
                f"resident_view.source_priority names unknown source(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(self.sources)}"
            )
        return self

    # Paths -------------------------------------------------------------------------------
    def source_path(self, source: str) -> Path:
        path = self.sources[source].path
        return path if path.is_absolute() else (self.base_dir / path)

    def output_dir(self, override: Optional[Union[str, Path]] = None) -> Path:
        if override is not None:
            return Path(override)
        if self.output is None:
            return self.base_dir / "residentview-output"
        return self.output if self.output.is_absolute() else self.base_dir / self.output

    def model_path(self) -> Optional[Path]:
        path = self.linkage.model
        if path is None:
            return None
        return path if path.is_absolute() else self.base_dir / path

    @property
    def label(self) -> str:
        """How error messages name this config: its file, or '<config>' for a dict."""
        return str(self.config_path) if self.config_path else "<config>"


# Loading ---------------------------------------------------------------------------------

_TOP_KEYS = ("name", "sources", "linkage", "resident_view", "output")


def _allowed_keys(loc: tuple) -> Optional[tuple[str, ...]]:
    """The keys allowed at the mapping that contains `loc[-1]`, for 'unknown key' messages."""
    parent = loc[:-1]
    if len(parent) == 0:
        return _TOP_KEYS
    if len(parent) == 2 and parent[0] == "sources":
        return tuple(k for k in SourceConfig.model_fields)
    if len(parent) == 3 and parent[0] == "sources" and parent[2] == "fields":
        return CANONICAL_FIELDS
    if len(parent) == 4 and parent[2] == "fields":
        return ("column", "format")
    if parent == ("linkage",):
        return tuple(LinkageConfig.model_fields)
    if parent == ("resident_view",):
        return tuple(ResidentViewConfig.model_fields)
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(label: str, err: dict) -> str:
    loc = tuple(str(p) for p in err["loc"])
    where = ".".join(loc) if loc else "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        what = "field" if len(loc) == 4 and loc[2] == "fields" else "key"
        expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"{label}: {where}: unknown {what} {loc[-1]!r}{expected}"
    if kind == "missing":
        return f"{label}: {where}: missing required key {loc[-1]!r}"
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    found = err.get("input")
    if kind.startswith(("string_", "float_", "int_", "dict_", "list_", "model_", "greater", "less")):
        return f"{label}: {where}: found {_describe(found)}, expected {message[0].lower() + message[1:]}"
    return f"{label}: {where}: {message}"


def _validate(data: Any, label: str, base_dir: Path, config_path: Optional[Path]) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a YAML mapping with keys name and sources, found {type(data).__name__}")
    try:
        return Config.model_validate(
            {**data, "base_dir": base_dir, "config_path": config_path}
        )
    except ValidationError as exc:
        errors = [e for e in exc.errors() if tuple(e["loc"])[:1] not in (("base_dir",), ("config_path",))]
        raise ConfigError(_one_line(label, errors[0] if errors else exc.errors()[0])) from None


def load_config(config: Union[str, Path, dict, Config], base_dir: Optional[Union[str, Path]] = None) -> Config:
    """Read and validate a config from a YAML path, a dict, or pass a `Config` through.

    Relative paths in the config are resolved from the config file's folder (or `base_dir`, or the
    working directory, for a dict).
    """
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return _validate(config, "<config>", Path(base_dir or Path.cwd()).resolve(), None)
    path = Path(config)
    label = str(path)
    if not path.exists():
        raise ConfigError(f"{label}: config file not found")
    if path.is_dir():
        raise ConfigError(f"{label}: is a folder, expected a YAML config file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{label}: config file is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{label}: not valid YAML{where}: {problem}") from None
    if data is None:
        raise ConfigError(f"{label}: config file is empty; expected keys name and sources")
    base = Path(base_dir) if base_dir else path.resolve().parent
    return _validate(data, label, base, path)
