"""Opening a store file without ever writing it: the SQLite URI a reader uses.

Status and report commands, the console and `bemctl doctor` read a store they must never
create, migrate or lock, and that may be a read-only copy. Both a read-only `Store`
(`store.db`) and schema inspection (`store.schema.inspect_schema`) open the file this way.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from store.errors import BemctlError
from store.writable import is_writable


def reader_uri(path: Path) -> tuple[str, str]:
    """SQLite URI for reading `path` without ever writing, and which open mode it uses.

    `mode=ro` is the normal read-only open. A WAL database needs its `-shm` index even to
    read, and SQLite creates it beside the file; in a directory it may not write (a
    read-only copy of a store) that fails unless the index already exists. There, the
    reader opens with `immutable=1` instead: no locks, no index, the file read as is.
    That is safe because nothing can be writing: a bemctl writer needs to create the
    `-wal`/`-shm` files in that same directory (it refuses a directory it may not write),
    and with no `-wal` file present every committed change is in the main file. A `-wal`
    left with content there (a crashed writer, a copy taken mid-write) would be ignored by
    an immutable reader, so that case is refused with how to fix it instead.
    """
    resolved = path.resolve()
    uri = "file:" + quote(str(resolved))  # quote: '?', '#', '%' in the path are not URI syntax
    shm = resolved.with_name(resolved.name + "-shm")
    if is_writable(resolved.parent) or shm.exists():
        return uri + "?mode=ro", "ro"
    wal = resolved.with_name(resolved.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise BemctlError(
            f"{path}: cannot read: {wal.name} holds changes not yet in the store and the "
            f"directory {resolved.parent} is read-only; make the directory writable once "
            "(any bemctl command then folds them in)"
        )
    return uri + "?mode=ro&immutable=1", "immutable"
