"""The memory a run may use (`memory_limit`): DuckDB's share of it, and the check after reading
the sources that stops a run expected to need more, in one line that points to Spark."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
import yaml

import residentview as rv
from residentview import DataError
from residentview.linkage.model import _load
from residentview.memory import (
    DUCKDB_MEMORY_LIMIT, check_driver_memory, check_memory, duckdb_memory_limit, expected_driver_peak, expected_peak,
    memory_limit_in_force, size_bytes,
)


def _duckdb_setting(limit: str) -> str:
    with duckdb.connect(config={"memory_limit": limit}) as connection:
        return connection.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_sizes_read_as_duckdb_reads_them():
    assert size_bytes("8GB") == 8 * 10**9
    assert size_bytes("512 mib") == 512 * 2**20
    assert size_bytes("8") is None and size_bytes("eight GB") is None


def test_without_a_limit_the_linking_database_keeps_its_default():
    assert duckdb_memory_limit() == DUCKDB_MEMORY_LIMIT
    with memory_limit_in_force(None):
        assert duckdb_memory_limit() == DUCKDB_MEMORY_LIMIT


def test_the_linking_database_gets_a_quarter_of_the_runs_limit():
    frame = pd.DataFrame({"unique_id": ["a-1"], "source": ["a"], "record_id": ["1"]})
    with memory_limit_in_force("4GB"):
        _, _, connection = _load(frame)
    setting = connection.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert setting == _duckdb_setting("1000MB")
    assert duckdb_memory_limit() == DUCKDB_MEMORY_LIMIT  # only within the run


def test_a_small_run_fits():
    check_memory(45, None, "borough.yaml")
    assert expected_peak(1_000_000) < expected_peak(2_000_000) < 2 * expected_peak(1_000_000)


def test_a_run_expected_to_need_more_than_its_limit_stops_after_reading(linkable_pair):
    config = yaml.safe_load(linkable_pair.read_text(encoding="utf-8"))
    linkable_pair.write_text(yaml.safe_dump({**config, "memory_limit": "1MB"}), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        rv.link(linkable_pair, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{linkable_pair}: 45 records are expected to need about ")
    assert "more than the 1 MB memory_limit 1MB allows" in message
    assert "engine: spark" in message
    assert not (linkable_pair.parent / "out").exists()


def test_without_a_limit_a_run_is_held_to_what_the_machine_has():
    with pytest.raises(DataError) as caught:
        check_memory(10**12, None, "borough.yaml")
    message = str(caught.value)
    assert message.startswith("borough.yaml: 1,000,000,000,000 records are expected to need about ")
    assert "this machine has available; free memory or use a machine with more, or run it on Spark" in message


def test_without_a_limit_a_small_run_is_never_refused_for_want_of_free_memory(monkeypatch):
    import residentview.memory as memory

    monkeypatch.setattr(memory, "memory_allowed", lambda limit: (10**6, "this machine has available"))
    check_memory(100_000, None, "borough.yaml")  # about 1.2 GB expected: not checked against the machine
    with pytest.raises(DataError, match="this machine has available"):
        check_memory(1_000_000, None, "borough.yaml")
    with pytest.raises(DataError, match="engine: spark"):
        check_memory(100_000, "1MB", "borough.yaml")


def test_an_update_already_on_spark_is_not_sent_to_spark():
    with pytest.raises(DataError) as caught:
        check_memory(100_000, "1MB", "borough.yaml", spark_offered=False)
    assert str(caught.value).endswith("more than the 1 MB memory_limit 1MB allows; raise memory_limit on a machine "
                                      "that has the memory")


def test_a_spark_driver_is_checked_with_its_jvm_beside_it(monkeypatch):
    import residentview.memory as memory

    gib = 2**30
    assert expected_driver_peak(1_000_000) < expected_driver_peak(2_000_000) < 2 * expected_driver_peak(1_000_000)
    check_driver_memory(1_000_000, "8GB", "borough.yaml", jvm_bytes=3 * gib)  # about 4 GB beside 3.2 GB
    with pytest.raises(DataError) as caught:
        check_driver_memory(1_000_000, "6GB", "borough.yaml", jvm_bytes=3 * gib)  # the driver alone would fit
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("borough.yaml: 1,000,000 records are expected to need about 4.0 GB in the Spark "
                              "driver's Python process")
    assert "beside the 3.2 GB of the driver's JVM (spark.driver.memory): more than the 6.0 GB memory_limit 6GB " \
           "allows; raise memory_limit on a machine that has the memory" in message
    assert "engine: spark" not in message  # it is on Spark already

    monkeypatch.setattr(memory, "memory_allowed", lambda limit: (3 * gib, "this machine has available"))
    check_driver_memory(10_000, None, "borough.yaml", jvm_bytes=3 * gib)  # small: not held to what is free now
    with pytest.raises(DataError, match="this machine has available; free memory or use a machine with more$"):
        check_driver_memory(1_000_000, None, "borough.yaml", jvm_bytes=gib)


def test_every_database_a_run_opens_is_held_to_its_share_of_the_limit(linkable_pair, monkeypatch):
    """The linking database, and the resident view's, the row hashes', the report's and the
    written database's (in the writing thread too); Splink's own helper databases are set just
    after they open (below)."""
    import inspect

    config = yaml.safe_load(linkable_pair.read_text(encoding="utf-8"))
    linkable_pair.write_text(yaml.safe_dump({**config, "memory_limit": "4GB"}), encoding="utf-8")
    opened, connect = [], duckdb.connect

    def spying(*args, **kwargs):
        connection = connect(*args, **kwargs)
        if not any(frame.filename.endswith("splink/internals/database_api.py") for frame in inspect.stack()[1:4]):
            opened.append(connection.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return connection

    monkeypatch.setattr(duckdb, "connect", spying)
    rv.link(linkable_pair, progress=False).write(linkable_pair.parent / "out")
    assert len(opened) >= 5
    assert set(opened) == {_duckdb_setting("1000MB")}


def test_splinks_own_helper_database_is_held_to_the_limit_too():
    from residentview.memory import splink_duckdb_api

    def helper_setting():
        api = splink_duckdb_api(duckdb.connect())
        return api.duckdb_con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    with memory_limit_in_force("4GB"):
        assert helper_setting() == _duckdb_setting("1000MB")
    assert helper_setting() != _duckdb_setting("1000MB")  # without a limit, DuckDB's default
