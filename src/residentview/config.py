"""The linkage config (CONTRACT §1): YAML in, a validated `Config` out, one-line errors.

Every error names the config file, the key path (``sources.council_tax.fields.frist_name``), what
was found and what was expected. Unknown keys are errors: a typo must never be silently ignored.
"""

from __future__ import annotations

import codecs
import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from residentview.databases import url_problem
from residentview.errors import ConfigError
from residentview.fields import (
    CANONICAL_FIELDS,
    NAME_FIELDS,
    RUN_NAME_RE,
    SOURCE_NAME_RE,
    identifier_column,
)

SUPPORTED_EXTENSIONS = (".csv", ".parquet", ".xlsx")
NAME_RULE = "letters, digits and '_', starting with a letter"


def _number_as_text(value: Any) -> Any:
    """YAML reads `id: 2019` as a number; a column (or run) called 2019 is still meant as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_number_as_text)]


class FieldSpec(BaseModel):
    """Where a canonical field comes from: one column, several joined with ", ", and a date format."""

    model_config = ConfigDict(extra="forbid")

    column: Union[Text, list[Text]]
    format: Optional[str] = None

    @property
    def columns(self) -> list[str]:
        return [self.column] if isinstance(self.column, str) else list(self.column)

    @field_validator("column")
    @classmethod
    def _columns_not_blank(cls, value):
        cols = [value] if isinstance(value, str) else value
        if not cols or any(not c.strip() for c in cols):
            raise ValueError("expected a non-empty column name")
        return value


def _as_field_spec(value: Any) -> Any:
    value = _number_as_text(value)
    if isinstance(value, (str, list)):
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
    identifiers: dict[str, Text] = Field(default_factory=dict)

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
        seen: dict[str, str] = {}
        for name, column in value.items():
            if not SOURCE_NAME_RE.match(name):
                raise ValueError(f"identifier name {name!r} is not allowed; expected {NAME_RULE}")
            if not column.strip():
                raise ValueError(f"identifier {name!r} has a blank column; expected a column name")
            # identifiers become lower-case `id_<name>` columns, so UPN and upn would collide
            column_name = identifier_column(name)
            if column_name in seen:
                raise ValueError(
                    f"identifier names {seen[column_name]!r} and {name!r} differ only in case; "
                    "expected distinct names"
                )
            seen[column_name] = name
        return value

    @model_validator(mode="after")
    def _needs_a_name(self) -> "SourceFields":
        if not any(getattr(self, f) is not None for f in NAME_FIELDS):
            raise ValueError(
                "no name field mapped; expected at least one of " + ", ".join(NAME_FIELDS)
            )
        return self

    def mapped(self) -> dict[str, FieldSpec]:
        """The canonical fields this source maps (identifiers excluded), in canonical order."""
        return {
            name: getattr(self, name)
            for name in CANONICAL_FIELDS
            if name != "identifiers" and getattr(self, name) is not None
        }

    def columns(self) -> list[str]:
        """Every source column these fields read, once each, in canonical field order."""
        wanted = [c for spec in self.mapped().values() for c in spec.columns]
        wanted.extend(self.identifiers.values())
        return list(dict.fromkeys(wanted))


class RetentionConfig(BaseModel):
    """How long a source's records may be used (CONTRACT §10): a record whose `record_date` is
    older than this, counted back from the run's date, is not read. Calendar years and months."""

    model_config = ConfigDict(extra="forbid")

    years: Optional[int] = Field(None, gt=0)
    months: Optional[int] = Field(None, gt=0)

    @model_validator(mode="after")
    def _a_period(self) -> "RetentionConfig":
        if self.years is None and self.months is None:
            raise ValueError("expected years, months or both (e.g. {years: 6})")
        return self

    def cutoff(self, today: "pd.Timestamp") -> "pd.Timestamp":
        """The earliest record_date still kept on `today` (midnight; a naive date)."""
        import pandas as pd

        day = pd.Timestamp(today)
        day = (day.tz_convert(None) if day.tzinfo is not None else day).normalize()
        return day - pd.DateOffset(years=self.years or 0, months=self.months or 0)

    def describe(self) -> str:
        parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in ((self.years, "year"), (self.months, "month")) if n]
        return " and ".join(parts)


def _database_url(value: str) -> str:
    problem = url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


DatabaseUrl = Annotated[str, AfterValidator(_database_url)]


def _memory_size(value: Any) -> str:
    from residentview.memory import size_bytes

    # A bare number is refused, not read as bytes: `memory_limit: 8` almost always means 8GB.
    if not isinstance(value, str) or size_bytes(value) is None:
        raise ValueError("expected a size with its unit, such as 8GB or 512MB")
    return value.strip()


MemorySize = Annotated[str, BeforeValidator(_memory_size)]


def _a_mapping(value: Any, expected: str) -> Any:
    # Said here, not by pydantic's type check, whose message would quote the value: a URL
    # given where the mapping belongs may hold a password.
    if not isinstance(value, dict):
        raise ValueError(f"must be {expected}")
    return value


class SqlSource(BaseModel):
    """A source read from a database (CONTRACT §9): a query, or every row of a table or view."""

    model_config = ConfigDict(extra="forbid")

    url: DatabaseUrl
    query: Optional[str] = None
    table: Optional[str] = None  # `name`, or `schema.name`
    chunk_size: int = Field(50_000, gt=0)  # rows fetched at a time

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return _a_mapping(value, "a mapping {url: ..., query: ...} or {url: ..., table: ...}")

    @model_validator(mode="after")
    def _query_or_table(self) -> "SqlSource":
        given = [k for k in ("query", "table") if getattr(self, k) is not None]
        if len(given) != 1:
            found = "both" if given else "neither"
            raise ValueError(f"needs exactly one of query (a SELECT) or table (a table or view); found {found}")
        if not (self.query or self.table).strip():
            raise ValueError(f"{given[0]} is blank; expected {'a SELECT' if self.query is not None else 'a table name'}")
        return self


# Settings that only a file has: refused on a database source, which has none of them.
FILE_OPTIONS = ("encoding", "sheet", "delimiter", "header_row")


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Optional[Path] = None
    sql: Optional[SqlSource] = None  # instead of path: a database (CONTRACT §9)
    id: Text
    encoding: str = "auto"
    sheet: Optional[Union[str, int]] = None
    # CSV only: one character (or `tab`). Default: a comma, or the header line's own tab, ';' or
    # '|' when it holds no comma (so every file that read before reads the same).
    delimiter: Optional[str] = None
    # CSV and .xlsx: the 1-based row of the header, for extracts with a title above it.
    header_row: Optional[int] = Field(None, ge=1)
    fields: SourceFields
    retention: Optional[RetentionConfig] = None

    @field_validator("path")
    @classmethod
    def _supported_extension(cls, value: Optional[Path]) -> Optional[Path]:
        if value is None:
            return value
        suffix = value.suffix.lower()
        if suffix not in SUPPORTED_EXTENSIONS:
            hint = " (save the workbook as .xlsx)" if suffix == ".xls" else ""
            raise ValueError(
                f"unsupported file type {suffix or '(none)'!r}{hint}; expected one of "
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
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError("expected auto, utf-8, cp1252, latin-1 or another Python codec") from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and value.lower() == "tab":
            return "\t"
        if value is not None and (len(value) != 1 or value.isalnum() or value in "\"\r\n"):
            raise ValueError("expected one character such as ';', '|' or tab (not a letter, digit, quote or newline)")
        return value

    @model_validator(mode="after")
    def _retention_needs_a_date(self) -> "SourceConfig":
        if self.retention is not None and self.fields.record_date is None:
            raise ValueError("retention needs the record_date field mapped (the date it counts from)")
        return self

    @model_validator(mode="after")
    def _path_or_sql(self) -> "SourceConfig":
        if (self.path is None) == (self.sql is None):
            found = "both" if self.path is not None else "neither"
            raise ValueError(f"a source needs either path (a file) or sql (a database); found {found}")
        given = [k for k in FILE_OPTIONS if k in self.model_fields_set]
        if self.sql is not None and given:
            raise ValueError(f"'{given[0]}' applies to files only; this source reads a database (sql)")
        return self

    @model_validator(mode="after")
    def _options_fit_the_file_type(self) -> "SourceConfig":
        if self.path is None:  # a database source: _path_or_sql has checked it
            return self
        suffix = self.path.suffix.lower()
        if self.encoding != "auto" and suffix != ".csv":
            raise ValueError(f"'encoding' applies to .csv files only; this source is a {suffix} file")
        if self.sheet is not None and suffix != ".xlsx":
            raise ValueError(f"'sheet' applies to .xlsx files only; this source is a {suffix} file")
        if self.delimiter is not None and suffix != ".csv":
            raise ValueError(f"'delimiter' applies to .csv files only; this source is a {suffix} file")
        if self.header_row is not None and suffix not in (".csv", ".xlsx"):
            raise ValueError(f"'header_row' applies to .csv and .xlsx files only; this source is a {suffix} file")
        return self

    def columns(self) -> list[str]:
        """Every column this source reads: the id, then the mapped fields' columns."""
        return list(dict.fromkeys([self.id, *self.fields.columns()]))

    def date_format(self, field: str) -> Optional[str]:
        spec = getattr(self.fields, field)
        return spec.format if spec is not None else None


class LinkageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.95, gt=0.0, lt=1.0)
    model: Optional[Path] = None
    seed: int = 42
    max_pairs_per_rule: int = Field(20_000_000, gt=0)
    # The blocking budget: comparisons per person record (linkage.blocking.comparison_budget).
    comparisons_per_record: int = Field(5, gt=0)
    training_sample_size: int = Field(300_000, gt=0)


class ResidentViewConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_priority: list[str] = Field(default_factory=list)
    # Ages whose birthday makes a life event (`turned_<N>` in events.parquet): 18 by default;
    # a service adds its own (16 for school leavers, 66 for the state pension).
    event_ages: list[Annotated[int, Field(gt=0, lt=130)]] = Field(default_factory=lambda: [18])


class OutputConfig(BaseModel):
    """Where a run's outputs go: `output: out/` (the folder, CONTRACT §1), or a mapping with the
    folder and a database the resident view's tables are also written to (issue 21):
    `output: {folder: out/, url: postgresql://rv@dbhost/council, schema: resident_view}`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    folder: Optional[Path] = None  # default: residentview-output/ beside the config
    url: Optional[DatabaseUrl] = None
    # `schema` in the config; another name here, as pydantic's BaseModel has a `schema` of its own
    db_schema: Optional[str] = Field(None, alias="schema")  # default: the database's own (public, dbo)
    # `engine: spark` only: a folder any of Spark's file systems holds (hdfs://, s3a://, abfss://,
    # file://…) that the run's Parquet files are also written to (engines/spark/outputs.py)
    spark_path: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _folder_or_mapping(cls, value: Any) -> Any:
        value = _number_as_text(value)
        if isinstance(value, str) and "://" in value:  # not quoted back: it may hold a password
            raise ValueError("is a database URL; expected a folder, "
                             "or {folder: ..., url: ..., schema: ..., spark_path: ...}")
        if isinstance(value, (str, Path)):
            return {"folder": value}
        return _a_mapping(value, "a folder, or a mapping {folder: ..., url: ..., schema: ..., spark_path: ...}")

    @field_validator("spark_path")
    @classmethod
    def _spark_path_rule(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("spark_path is blank; expected a folder Spark writes, e.g. hdfs:///council/resident-view")
        # user:secret@ (abfss's container@account is no secret): not quoted back
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@", value):
            raise ValueError("spark_path carries credentials; give them in Spark's configuration, not the path")
        return value.strip()

    @model_validator(mode="after")
    def _schema_needs_a_url(self) -> "OutputConfig":
        if self.db_schema is not None and self.url is None:
            raise ValueError("schema needs url (the database to write the resident view to)")
        if self.db_schema is not None and not self.db_schema.strip():
            raise ValueError("schema is blank; expected a schema name, or leave it out for the database's own")
        return self


class Config(BaseModel):
    """A validated linkage config. `base_dir` is the folder relative paths are resolved from."""

    model_config = ConfigDict(extra="forbid")

    name: Text
    sources: dict[str, SourceConfig]
    # Where the stages run (CONTRACT §9): the embedded DuckDB, or Spark (the `spark` extra)
    engine: Literal["duckdb", "spark"] = "duckdb"
    # The memory the run may use, e.g. "8GB" (`memory.py`): bounds DuckDB's working memory, and a
    # run expected to need more stops before it starts. Default: what the machine has available.
    memory_limit: Optional[MemorySize] = None
    linkage: LinkageConfig = Field(default_factory=LinkageConfig)
    resident_view: ResidentViewConfig = Field(default_factory=ResidentViewConfig)
    output: Optional[OutputConfig] = None
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    config_path: Optional[Path] = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        if not RUN_NAME_RE.match(value):
            raise ValueError("expected letters, digits, '_' and '-' only (it names the outputs)")
        return value

    @field_validator("sources", mode="before")
    @classmethod
    def _source_names(cls, value: Any) -> Any:
        # checked before the sources' own settings so a bad name is reported as itself
        if not isinstance(value, dict):
            return value
        if not value:
            raise ValueError("no sources; expected at least one source")
        seen: dict[str, str] = {}
        for name in value:
            if not isinstance(name, str) or not SOURCE_NAME_RE.match(name):
                raise ValueError(f"source name {name!r} is not allowed; expected {NAME_RULE}")
            # SQL folds identifier case, so a stage naming a table after a source would collide
            if name.lower() in seen:
                raise ValueError(
                    f"source names {seen[name.lower()]!r} and {name!r} differ only in case; expected distinct names"
                )
            seen[name.lower()] = name
        return value

    @model_validator(mode="after")
    def _priority_names_known(self) -> "Config":
        unknown = [s for s in self.resident_view.source_priority if s not in self.sources]
        if unknown:
            raise ValueError(
                f"resident_view.source_priority: found unknown source(s) {', '.join(map(repr, unknown))}, "
                f"expected some of: {', '.join(self.sources)}"
            )
        return self

    # Paths -------------------------------------------------------------------------------
    def _resolve(self, path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def source_path(self, source: str) -> Path:
        return self._resolve(self.sources[source].path)

    def output_dir(self, override: Optional[Union[str, Path]] = None) -> Path:
        if override is not None:
            return Path(override)
        folder = self.output.folder if self.output is not None else None
        return self._resolve(folder or Path("residentview-output"))

    @property
    def spark_path(self) -> Optional[str]:
        """Where Spark also writes the run's Parquet files, when the config says (`output.spark_path`)."""
        return self.output.spark_path if self.output is not None else None

    @property
    def output_database(self) -> Optional[OutputConfig]:
        """The database the resident view is also written to, when the config names one."""
        return self.output if self.output is not None and self.output.url is not None else None

    def model_path(self) -> Optional[Path]:
        return None if self.linkage.model is None else self._resolve(self.linkage.model)

    @property
    def label(self) -> str:
        """How error messages name this config: its file, or '<config>' for a dict."""
        return str(self.config_path) if self.config_path else "<config>"


# One-line error messages -----------------------------------------------------------------

_INTERNAL_KEYS = ("base_dir", "config_path")  # set by load_config, never by the user
_USER_KEYS = tuple(k for k in Config.model_fields if k not in _INTERNAL_KEYS)

_EXPECTED_SHAPE = {
    "SourceConfig": "a mapping with path, id and fields",
    "SourceFields": "a mapping of canonical field -> column",
    "FieldSpec": "a column name, a list of column names, or {column: ..., format: ...}",
    "LinkageConfig": "a mapping (e.g. threshold: 0.95)",
    "RetentionConfig": "a mapping (e.g. {years: 6})",
    "ResidentViewConfig": "a mapping (e.g. source_priority: [...])",
    "SqlSource": "{url: ..., query: ...} or {url: ..., table: ...}",
    "OutputConfig": "a folder, or {folder: ..., url: ..., schema: ..., spark_path: ...}",
}


def _allowed_keys(loc: tuple) -> Optional[tuple[str, ...]]:
    """The keys allowed at the mapping that contains `loc[-1]`, for 'unknown key' messages."""
    parent = loc[:-1]
    if len(parent) == 0:
        return _USER_KEYS
    if len(parent) == 2 and parent[0] == "sources":
        return tuple(SourceConfig.model_fields)
    if len(parent) == 3 and parent[0] == "sources" and parent[2] == "fields":
        return CANONICAL_FIELDS
    if len(parent) == 3 and parent[0] == "sources" and parent[2] == "sql":
        return tuple(SqlSource.model_fields)
    if parent == ("output",):
        return tuple(f.alias or name for name, f in OutputConfig.model_fields.items())
    if len(parent) == 3 and parent[0] == "sources" and parent[2] == "retention":
        return tuple(RetentionConfig.model_fields)
    if len(parent) == 4 and parent[2] == "fields":
        return tuple(FieldSpec.model_fields)
    if parent == ("linkage",):
        return tuple(LinkageConfig.model_fields)
    if parent == ("resident_view",):
        return tuple(ResidentViewConfig.model_fields)
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(err: dict) -> Optional[str]:
    """What a built-in pydantic check expected, in a config author's words."""
    kind, ctx, loc = err["type"], err.get("ctx") or {}, err["loc"]
    if kind in ("string_type", "string_too_short"):
        return "text"
    if kind.startswith("float_"):
        return "a number"
    if kind.startswith("int_"):
        return "a whole number"
    if kind.startswith("bool_"):
        return "true or false"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}
        bound = next(k for k in words if k in ctx)
        return f"a number {words[bound]} {ctx[bound]}"
    if kind == "model_type":
        return _EXPECTED_SHAPE.get(ctx.get("class_name"), "a mapping")
    if kind == "dict_type":
        if loc == ("sources",):
            return "a mapping of source name -> its settings"
        if loc[-1:] == ("identifiers",):
            return "a mapping of identifier name -> column"
        return "a mapping"
    if kind == "list_type":
        return "a list"
    if kind.startswith("path_"):
        return "a file or folder path"
    return None


def _one_line(label: str, err: dict) -> str:
    loc = tuple(str(p) for p in err["loc"])
    kind = err["type"]
    if loc[-1:] == ("[key]",):
        where = ".".join(loc[:-2]) or "(top level)"
        return f"{label}: {where}: found key {_describe(err['loc'][-2])}, expected text"
    where = ".".join(loc) if loc else "(top level)"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc) or ()
        what = "field" if len(loc) == 4 and loc[2] == "fields" else "key"
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"{label}: {where}: unknown {what} {loc[-1]!r}{hint}{expected}"
    if kind == "missing":
        return f"{label}: {where}: missing required key {loc[-1]!r}"
    expected = _expected(err)
    if expected is not None:
        return f"{label}: {where}: found {_describe(err.get('input'))}, expected {expected}"
    message = err["msg"].removeprefix("Value error, ")
    if not loc:  # a check across keys names its own key path
        return f"{label}: {message}"
    if message.startswith("expected"):
        return f"{label}: {where}: found {_describe(err.get('input'))}, {message}"
    return f"{label}: {where}: {message}"


def _validate(data: Any, label: str, base_dir: Path, config_path: Optional[Path]) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{label}: found {type(data).__name__}, expected a YAML mapping with keys name and sources"
        )
    for key in _INTERNAL_KEYS:
        if key in data:
            raise ConfigError(
                f"{label}: {key}: unknown key {key!r}; expected one of: {', '.join(_USER_KEYS)}"
            )
    try:
        return Config.model_validate({**data, "base_dir": base_dir, "config_path": config_path})
    except ValidationError as exc:
        raise ConfigError(_one_line(label, exc.errors()[0])) from None


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int):
        super().__init__(key, line)
        self.key, self.line = key, line


class _StrictLoader(yaml.SafeLoader):
    """YAML's own rule keeps the last of two equal keys; a second `council_tax:` or `first_name:`
    is almost always a copy-paste slip, so it is an error here."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a list or mapping as a key: the base class reports it
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(
    config: Union[str, Path, dict, Config], base_dir: Optional[Union[str, Path]] = None
) -> Config:
    """Read and validate a config from a YAML path, a dict, or pass a `Config` through.

    Relative paths in the config are resolved from the config file's folder (or `base_dir`, or the
    working directory, for a dict).
    """
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return _validate(config, "<config>", Path(base_dir or Path.cwd()).resolve(), None)
    if not isinstance(config, (str, Path)):
        raise ConfigError(
            f"<config>: found {type(config).__name__}, expected a YAML file path, a dict or a Config"
        )
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
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read the config file ({exc.strerror or type(exc).__name__})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as exc:
        raise ConfigError(f"{label}: line {exc.line}: duplicate key {exc.key!r}; expected each key once") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{label}: not valid YAML{where}: {problem}") from None
    if data is None:
        raise ConfigError(f"{label}: config file is empty; expected keys name and sources")
    base = Path(base_dir) if base_dir else path.resolve().parent
    return _validate(data, label, base, path)
