"""A token cache in one JSON file, shared by every process of one machine.

Example::

    from delivery_auth import ClientCredentialsAuth
    from delivery_auth.cache import FileTokenCache

    cache = FileTokenCache("/run/myapp/tokens.json")
    auth = ClientCredentialsAuth(url, "id", "secret", cache=cache)   # in every worker
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..token import Token
from .base import CacheObservers
from .codec import (
    CacheRecordError,
    EncryptionKey,
    TokenCodec,
    WarnOnce,
    remaining_lifetime,
    token_fingerprint,
)
from .memory import MemoryTokenCache

__all__ = ["FileTokenCache"]

logger = logging.getLogger("delivery_auth")

_FORMAT = "delivery-auth token cache"
_VERSION = 1
#: A token cache holds a few small records; anything far bigger is not ours.
_MAX_FILE_SIZE = 4 * 1024 * 1024
#: Added to the engine's lock timeout: how long a waiter waits for a live holder.
_LOCK_MARGIN = 1.0
#: Writers hold the write lock for one read-modify-write of a small file.
_WRITE_LOCK_TIMEOUT = 10.0

_BAD_FILE = "bad-file"
_MEMORY = "memory"


class FileTokenCache:
    """Keeps tokens in one JSON file so that every process on the machine shares them.

    - Writes are atomic (a temporary file in the same directory, then ``os.replace``),
      the file is created with mode 0600 and a missing directory with mode 0700.
    - :meth:`lock` is a lock file next to the cache (``<path>.<key>.lock``), so that N
      processes on a cold cache make one token request. The operating system frees it
      when its holder dies, so a crashed worker never blocks the others.
    - A corrupt, truncated or foreign file is read as empty, with one WARNING; it is
      replaced at the next write. A path that cannot be written makes the cache keep
      tokens in this process only, with one WARNING.
    - ``encryption_key`` (a Fernet key) encrypts the tokens at rest; a process without
      the key, or with another key, sees a miss (and one WARNING).

    The file never holds the client secret: entries are keyed by
    :func:`~delivery_auth.cache.cache_key`, a hash.

    Example::

        cache = FileTokenCache("~/.cache/myapp/tokens.json", encryption_key=key)
        auth = ClientCredentialsAuth(url, "id", "secret", cache=cache)
    """

    def __init__(
        self, path: str | os.PathLike[str], *, encryption_key: EncryptionKey | None = None
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"path must be a file path (str or PathLike), got {type(path).__name__}"
            )
        raw = os.fspath(path)
        if not raw:
            raise ValueError("path must name a file, e.g. '/run/myapp/tokens.json'")
        self.path = Path(os.path.abspath(os.path.expanduser(raw)))
        self._codec = TokenCodec(encryption_key)
        self._warnings = WarnOnce()
        #: the auth objects told when the file cannot be used (``observers.add(events)``)
        self.observers = CacheObservers(type(self).__name__)
        self._memory: MemoryTokenCache | None = None
        self._guard = threading.Lock()
        self._prepare()

    def __repr__(self) -> str:
        mode = "memory fallback" if self._memory is not None else "file"
        return (
            f"FileTokenCache(path={str(self.path)!r}, encrypted={self._codec.encrypted}, "
            f"mode={mode!r})"
        )

    # -- the TokenCache protocol ----------------------------------------------------

    def get(self, key: str) -> Token | None:
        """The stored token for ``key``, or ``None`` (also for an expired or unreadable one)."""
        memory = self._memory
        if memory is not None:
            return memory.get(key)
        entry = self._read_entries().get(key)
        if entry is None:
            return None
        try:
            token = self._codec.unseal(entry)
        except CacheRecordError as exc:
            self._warnings.warn(
                f"entry:{key}",
                "Token cache file %s: %s; treating it as a miss.",
                self.path,
                exc,
            )
            return None
        self._warnings.clear(f"entry:{key}")
        remaining = remaining_lifetime(token)
        if remaining is not None and remaining <= 0:
            return None
        return token

    def set(self, key: str, token: Token) -> None:
        """Store ``token`` under ``key`` (atomic replace of the whole file)."""
        if self._memory is None:
            fingerprint = token_fingerprint(token)
            sealed = {"fp": fingerprint, **self._codec.seal(token)}
            try:
                with self._write_lock():
                    entries = self._pruned(self._read_entries())
                    entries[key] = sealed
                    self._write(entries)
                return
            except OSError as exc:
                self._use_memory(exc)
        memory = self._memory
        assert memory is not None
        memory.set(key, token)

    def delete_if(self, key: str, token: Token) -> bool:
        """Delete the entry for ``key`` only if it still holds ``token``."""
        if self._memory is None:
            fingerprint = token_fingerprint(token)
            try:
                with self._write_lock():
                    entries = self._read_entries()
                    entry = entries.get(key)
                    if not isinstance(entry, dict) or entry.get("fp") != fingerprint:
                        return False
                    del entries[key]
                    self._write(entries)
                    return True
            except OSError as exc:
                self._use_memory(exc)
        memory = self._memory
        assert memory is not None
        return memory.delete_if(key, token)

    def lock(self, key: str, timeout: float) -> AbstractContextManager[object]:
        """A lock file that excludes every process and thread refreshing ``key``.

        A waiter waits at most ``timeout`` plus a second (the longest a live holder needs)
        and then goes on without the lock, with a WARNING: at worst two token requests,
        never a hang.
        """
        memory = self._memory
        if memory is not None:
            return memory.lock(key, timeout)
        return self._refresh_lock(key, timeout)

    def reset_after_fork(self) -> None:
        """Called by the engine in a forked child: the parent's thread locks are dead here."""
        self._guard = threading.Lock()
        self._warnings.reset_after_fork()
        if self._memory is not None:
            self._memory.reset_after_fork()

    # -- internals ------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create the directory (0700) and check that we can write in it."""
        try:
            if self.path.is_dir():
                raise IsADirectoryError(21, "the path is a directory, not a file")
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            self._use_memory(exc)

    def _use_memory(self, exc: OSError) -> None:
        with self._guard:
            if self._memory is None:
                self._memory = MemoryTokenCache()
        if self._warnings.warn(
            _MEMORY,
            "Token cache file %s cannot be used (%s); tokens are kept in this process only, "
            "so processes no longer share them. Check the path and its permissions.",
            self.path,
            exc.strerror or type(exc).__name__,
        ):
            self.observers.outage(exc)

    def _acquire(self, lock_path: str, wait: float, purpose: str) -> FileLock | None:
        """The held lock, or ``None`` after waiting ``wait`` in vain (OSError propagates)."""
        lock = FileLock(lock_path, timeout=wait, mode=0o600)
        try:
            lock.acquire()
        except Timeout:  # a TimeoutError, hence an OSError: catch it first
            logger.warning(
                "Waited %.1f s for the token cache lock %s (%s) without getting it; going on "
                "without it (at worst one extra token request).",
                wait,
                lock_path,
                purpose,
            )
            return None
        return lock

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        lock = self._acquire(f"{self.path}.lock", _WRITE_LOCK_TIMEOUT, "writing")
        try:
            yield
        finally:
            if lock is not None:
                lock.release()

    @contextlib.contextmanager
    def _refresh_lock(self, key: str, timeout: float) -> Iterator[object]:
        try:
            lock = self._acquire(f"{self.path}.{key}.lock", timeout + _LOCK_MARGIN, "refreshing")
        except OSError as exc:
            self._use_memory(exc)
            memory = self._memory
            assert memory is not None
            with memory.lock(key, timeout) as held:
                yield held
            return
        try:
            yield lock
        finally:
            if lock is not None:
                lock.release()

    def _read_entries(self) -> dict[str, Any]:
        """The token entries in the file; ``{}`` when it is missing or not ours."""
        try:
            with open(self.path, "rb") as file:
                data = file.read(_MAX_FILE_SIZE + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self._use_memory(exc)
            return {}
        problem: str | None = None
        document: object = None
        if len(data) > _MAX_FILE_SIZE:
            problem = "it is far too big for a token cache"
        else:
            try:
                document = json.loads(data)
            except (ValueError, RecursionError) as exc:
                # The kind of error only; never the content, which may hold a token.
                problem = f"it is not valid JSON ({type(exc).__name__})"
        if problem is None:
            if (
                not isinstance(document, dict)
                or document.get("format") != _FORMAT
                or not isinstance(document.get("tokens"), dict)
            ):
                problem = "it is not a delivery-auth token cache"
            elif document.get("version") != _VERSION:
                problem = f"it has an unknown version {str(document.get('version'))[:10]!r}"
        if problem is not None:
            self._warnings.warn(
                _BAD_FILE,
                "Token cache file %s is unusable: %s; treating it as empty. It will be replaced "
                "at the next token refresh.",
                self.path,
                problem,
            )
            return {}
        self._warnings.clear(_BAD_FILE)
        assert isinstance(document, dict)
        tokens: dict[str, Any] = document["tokens"]
        return tokens

    def _pruned(self, entries: dict[str, Any]) -> dict[str, Any]:
        """``entries`` without the expired and malformed ones (undecryptable ones stay)."""
        kept: dict[str, Any] = {}
        for key, entry in entries.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("fp"), str):
                continue
            try:
                remaining = remaining_lifetime(self._codec.unseal(entry))
            except CacheRecordError:
                kept[key] = entry  # maybe another key's; not ours to judge
                continue
            if remaining is None or remaining > 0:
                kept[key] = entry
        return kept

    def _write(self, entries: dict[str, Any]) -> None:
        """Replace the file atomically: readers see the old or the new file, never half."""
        document = {"format": _FORMAT, "version": _VERSION, "tokens": entries}
        data = json.dumps(document, separators=(",", ":")).encode()
        directory = self.path.parent
        # mkstemp creates the file with mode 0600, and os.replace keeps that mode.
        fd, temp_path = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp_path, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            raise
        self._warnings.clear(_BAD_FILE)
