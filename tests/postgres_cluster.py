"""A throwaway PostgreSQL server for the database tests: Debian's `postgresql` package (`make
test` installs it when absent), a cluster made by initdb in a temporary folder, listening on a
free port of 127.0.0.1 (its unix socket in that folder), stopped and removed at the end.

initdb and postgres refuse to run as root, and CI runs as root: there, the server runs as the
`postgres` user the Debian package creates (or `nobody`), which owns the temporary folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

SUPERUSER = "rv_admin"


def server_binaries() -> Optional[Path]:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<ver>/bin
    (the newest), which is not on PATH."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)))
    return Path(newest).parent


def _server_user() -> Optional[str]:
    """Who runs the server: this user, unless this is root (whom postgres refuses)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, and no 'postgres' or 'nobody' user to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    root: Path
    binaries: Path
    port: int
    password: str
    user: Optional[str]  # the OS user the server runs as (None: this one)
    host: str = "127.0.0.1"

    def url(self, database: str = "council", user: str = SUPERUSER) -> str:
        """A residentview URL for `database`: no password (that comes from the environment)."""
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "council"):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=SUPERUSER, password=self.password,
                               dbname=database, autocommit=True)

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(self.binaries / args[0]), *args[1:]], capture_output=True, text=True,
                              cwd=self.root, user=self.user, group=self.user, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done

    def start(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, password_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.root / "data"), "-U", SUPERUSER, f"--pwfile={password_file}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
        password_file.unlink()
        # fsync off: a test cluster that loses its data on a crash loses nothing of value
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses={self.host} -F", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> Cluster:
    """Start a fresh cluster (its superuser's password random) with an empty database `council`."""
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
    user = _server_user()
    # under /tmp, whatever TMPDIR says, when the server runs as another user: it must reach it
    root = Path(tempfile.mkdtemp(prefix="residentview-postgres-", dir="/tmp" if user else None))
    os.chmod(root, 0o700)
    cluster = Cluster(root, binaries, _free_port(), secrets.token_urlsafe(16), user)
    try:
        cluster.start()
        with cluster.connect("postgres") as connection:
            connection.execute("CREATE DATABASE council")
    except BaseException:
        try:
            cluster.stop()  # removes the folder too
        except Exception:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster
