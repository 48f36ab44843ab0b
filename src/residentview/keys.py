"""Secret keys for `share`, `encode` and `link-encoded` (CONTRACT §8).

A key lives in a file of its own that only its owner can read. It is never written anywhere:
what the outputs and the audit log may carry is its fingerprint, a short hash that tells two
keys apart and gives nothing of the key away.

    key = read_key(path, config_text=Path("config.yaml").read_text())
    fingerprint(key)   # 'a3f1 09c2 7d4e 5b18'
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import Iterable, Optional

from residentview.errors import DataError

MIN_KEY_BYTES = 16  # 128 bits: below this a key could be guessed
_FINGERPRINT_LABEL = b"residentview key fingerprint"


def read_key(path: Path, config_text: Optional[str] = None, others: Iterable[Path] = ()) -> bytes:
    """The key in `path`, stripped of surrounding whitespace. Refused (DataError, one line) when
    the file is missing, readable or writable by anyone but its owner, shorter than 16 bytes, or
    when the key appears in `config_text` or in any file of `others` (a key pasted into a config
    has been shared with everyone who can read the config)."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: key file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the key file ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{path}: the key file is not a regular file")
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DataError(f"{path}: the key file can be read or changed by others (mode {stat.S_IMODE(info.st_mode):o});"
                        f" make it private: chmod 600 {path}")
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the key file ({exc.strerror})") from None
    if len(key) < MIN_KEY_BYTES:
        raise DataError(f"{path}: the key is {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes "
                        "(for example: python -c \"import secrets; print(secrets.token_hex(32))\" > KEYFILE)")
    texts = [config_text] if config_text else []
    for other in others:
        try:
            texts.append(Path(other).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    text_key = key.decode("utf-8", errors="replace")
    if any(text_key in text for text in texts):
        raise DataError(f"{path}: the key also appears in the config; a key must live only in its key file "
                        "(choose a new key: the old one has been exposed)")
    return key


def fingerprint(key: bytes) -> str:
    """A short, stable name for a key (HMAC of a fixed label under the key: 64 bits, in four
    groups). Safe to print and to record; two different keys give different fingerprints."""
    digest = hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]
    return " ".join(digest[i:i + 4] for i in range(0, 16, 4))


def keyed_hash(key: bytes, value: str, purpose: str = "") -> str:
    """HMAC-SHA256 of `value` under `key`, hex. `purpose` separates uses of one key (a resident
    id and a record id that happen to be equal still get different pseudonyms)."""
    message = f"{purpose}\x1f{value}".encode("utf-8") if purpose else value.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()
