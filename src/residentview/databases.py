"""Council databases (CONTRACT §9): the connection that SQL sources read through and the
resident view is written through. SQLAlchemy, so one URL names any database it has a dialect
for: ``postgresql://`` (psycopg 3), ``mssql+pyodbc://``, ``oracle+oracledb://`` …

A password never sits in a config. It comes from ``RESIDENTVIEW_DB_PASSWORD``, or from the
driver's own ways (PGPASSWORD, ~/.pgpass, Windows authentication), and is never logged or
printed: messages name a database by `describe`, its dialect, user, host, port and database.

SQLAlchemy and the PostgreSQL driver are the optional ``sql`` extra; nothing here imports them
until a database is used, so a config is checked without them.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator, Optional
from urllib.parse import unquote, urlsplit

from residentview.errors import ConfigError, DataError

PASSWORD_VARIABLE = "RESIDENTVIEW_DB_PASSWORD"
SQL_EXTRA = "pip install 'residentview[sql]'"
CONNECT_TIMEOUT_SECONDS = 20  # libpq's own default is to wait for ever on a host that never answers
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+._-]*://")
# Where a password could hide in a URL's query: ?password=…, or an ODBC string's PWD=…
_QUERY_PASSWORD_RE = re.compile(r"(?i)(?:^|[&;?])\s*(?:password|pwd)\s*=")


def url_problem(url: str) -> Optional[str]:
    """Why `url` cannot be in a config (not a database URL, or it holds a password), or None.
    The message never quotes the URL: it may hold the password it refuses."""
    if not _URL_RE.match(url):
        return "is not a database URL; expected e.g. postgresql://user@host/database"
    parts = urlsplit(url)
    if parts.password or _QUERY_PASSWORD_RE.search(unquote(parts.query)):
        return (f"holds a password; remove it from the config and set {PASSWORD_VARIABLE} "
                "(or the driver's own, e.g. PGPASSWORD or ~/.pgpass) where residentview runs")
    return None


def describe(url: str) -> str:
    """`url` as messages show it: dialect, user, host, port and database; never a password or
    the query string (an ODBC connection string could carry one)."""
    parts = urlsplit(url)
    user = f"{unquote(parts.username)}@" if parts.username else ""
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: shown as it is written
        port = f":{parts.netloc.rsplit(':', 1)[-1]}"
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname or "the local socket"


def require_sqlalchemy(where: str):
    """SQLAlchemy, or a one-line error naming the extra that installs it."""
    try:
        import sqlalchemy
    except ImportError:
        raise ConfigError(f"{where}: databases need the 'sql' extra: {SQL_EXTRA}") from None
    return sqlalchemy


def create_engine(url: str, where: str):
    """A SQLAlchemy engine for `url` (which holds no password: the config refuses one), with
    the password from RESIDENTVIEW_DB_PASSWORD when that is set. Connects to nothing yet."""
    sa = require_sqlalchemy(where)
    problem = url_problem(url)
    if problem:
        raise ConfigError(f"{where}: the database URL {problem}")
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"{where}: the database URL is not one SQLAlchemy reads; "
                          "expected dialect[+driver]://user@host[:port]/database") from None
    password = os.environ.get(PASSWORD_VARIABLE)
    if password:
        parsed = parsed.set(password=password)
    options = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    try:
        # NullPool: a run opens a connection or two and must leave none behind
        return sa.create_engine(parsed, poolclass=sa.pool.NullPool, **options)
    except sa.exc.NoSuchModuleError:
        raise ConfigError(f"{where}: no SQLAlchemy dialect for '{parsed.drivername}'; expected e.g. postgresql, "
                          "mssql+pyodbc or oracle+oracledb (with its driver installed)") from None
    except ImportError as exc:
        missing = exc.name or "its driver"
        raise ConfigError(f"{where}: the driver for '{parsed.drivername}' is not installed (no module "
                          f"{missing!r}); install it into residentview's environment") from None


def reason(exc: BaseException) -> str:
    """The database's own words for a failure: its first line only, as the lines after it can
    quote a row's values (PostgreSQL's "DETAIL: Failing row contains (…)"); never the password."""
    original = getattr(exc, "orig", None) or exc
    text = next((line.strip() for line in str(original).splitlines() if line.strip()), "")
    password = os.environ.get(PASSWORD_VARIABLE)
    if password:
        text = text.replace(password, "***")
    return text[:300] + ("…" if len(text) > 300 else "") or type(original).__name__


@contextmanager
def connected(engine, url: str, where: str) -> Iterator:
    """A connection from `engine`; a failure to connect is one line naming `where` and the host."""
    sa = require_sqlalchemy(where)
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise DataError(f"{where}: cannot connect to the database on {host_of(url)} "
                        f"({reason(exc)})") from None
    try:
        yield connection
    finally:
        connection.close()


def check_connection(url: str, where: str) -> None:
    """Connect to `url` and leave again: `validate` says now what `link` would find out at its end."""
    engine = create_engine(url, where)
    try:
        with connected(engine, url, where):
            pass
    finally:
        engine.dispose()
