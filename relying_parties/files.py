"""Owner-only files for the service's secrets: its private key and its registration."""

import contextlib
import os
import tempfile
from pathlib import Path


def write_owner_only(path: Path, data: bytes, *, replace: bool) -> None:
    """Write data to path with mode 0600, never exposing a partly written file.

    With replace=False an existing file wins, so that of two processes racing to create
    the file, the first one's content is kept.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600.
    descriptor, temporary_path = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as temporary_file:
            temporary_file.write(data)
        if replace:
            os.replace(temporary_path, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(temporary_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary_path)
