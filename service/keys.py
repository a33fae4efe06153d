"""The signing keys: from the configuration, else one generated once and kept in data_dir."""

from __future__ import annotations

import os
from pathlib import Path

from service import ids
from service.settings import Settings

KEY_FILE = "secret-key"


def secret_keys(settings: Settings) -> tuple[str, ...]:
    if settings.security.secret_keys:
        return settings.security.secret_keys
    path = Path(settings.service.data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(ids.secret_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # link() refuses to replace: of two processes starting together, the first key wins
        # and both read that one.
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise OSError(f"{path} is empty; delete it to have a new key made")
    return (key,)
