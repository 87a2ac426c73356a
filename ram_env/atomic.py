"""Atomic file writes: a reader (or a crash) never sees a partial file.

Used for everything ram-env persists: the dataset caches, RAM checkpoints, SB3 models and run
settings.
"""

from __future__ import annotations

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
    partial file; the temporary file is removed on an exception. The folder must exist.
    """
    path = pathlib.Path(path)
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
