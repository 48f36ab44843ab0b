"""Key files for share / encode: refused when unsafe, never echoed."""

import os

import pytest

from residentview.errors import DataError
from residentview.keys import MIN_KEY_BYTES, fingerprint, keyed_hash, read_key


def _key_file(tmp_path, text="0123456789abcdef0123456789abcdef", mode=0o600):
    path = tmp_path / "partner.key"
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return path


def test_a_private_key_file_is_read_without_its_newline(tmp_path):
    assert read_key(_key_file(tmp_path)) == b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o666])
def test_a_key_file_others_can_read_is_refused(tmp_path, mode):
    with pytest.raises(DataError, match="chmod 600"):
        read_key(_key_file(tmp_path, mode=mode))


def test_a_short_key_is_refused(tmp_path):
    with pytest.raises(DataError, match=f"at least {MIN_KEY_BYTES}"):
        read_key(_key_file(tmp_path, text="short"))


def test_a_missing_key_file_is_one_line(tmp_path):
    with pytest.raises(DataError, match="key file not found"):
        read_key(tmp_path / "nowhere.key")


def test_a_key_pasted_into_the_config_is_refused_without_echoing_it(tmp_path):
    secret = "0123456789abcdef0123456789abcdef"
    config = tmp_path / "config.yaml"
    config.write_text(f"name: x\n# key: {secret}\n")
    with pytest.raises(DataError) as raised:
        read_key(_key_file(tmp_path, text=secret), others=[config])
    assert secret not in str(raised.value)
    with pytest.raises(DataError):
        read_key(_key_file(tmp_path, text=secret), config_text=config.read_text())


def test_fingerprints_tell_keys_apart_and_hide_them():
    a, b = b"a" * 32, b"b" * 32
    assert fingerprint(a) == fingerprint(a) != fingerprint(b)
    assert len(fingerprint(a)) == 19 and a.hex()[:16] not in fingerprint(a).replace(" ", "")


def test_keyed_hashes_depend_on_key_and_purpose():
    key = b"k" * 32
    assert keyed_hash(key, "R1") == keyed_hash(key, "R1")
    assert keyed_hash(key, "R1") != keyed_hash(b"j" * 32, "R1")
    assert keyed_hash(key, "R1", "resident") != keyed_hash(key, "R1", "record")
