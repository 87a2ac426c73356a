"""Atomic file writes: a reader (or a crash) never sees a partial file.

Used for everything ram-env persists: the dataset caches, RAM checkpoints, SB3 models and run
settings.
"""

from __future__ import annotations

import glob
import os
import pathlib
import secrets
from collections.abc import Callable
from typing import IO

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` atomically: ``write(file)`` fills a new temporary file in ``path``'s
    folder (created with the umask's permissions, like any new file), which is flushed to disk
    and renamed over ``path`` (``os.replace``).

    A crash or an exception at any moment leaves either the old file or the new one, never a
    partial file; the temporary file is removed on an exception, and a temporary file that a
    killed process left for the same ``path`` is removed by the next write to it. The folder
    must exist.
    """
    path = pathlib.Path(path)
    _remove_stale_temporaries(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _remove_stale_temporaries(path: pathlib.Path) -> None:
    """Remove ``.<name>.<pid>.<hex>.tmp`` files of ``path`` whose writer process is gone (on
    POSIX systems, where ``os.kill(pid, 0)`` only asks whether the process exists)."""
    if os.name != "posix":
        return
    for temporary in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = temporary.name[len(path.name) + 2 :].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            temporary.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
