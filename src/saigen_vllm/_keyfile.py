"""API key files: made safely (a 0700 folder that is yours, mkstemp then os.replace, never
through a symlink, never over an existing key without being told) and read back for
``--api-key-file``."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path

KEY_NAMES = ("SAIGEN_VLLM_API_KEY", "VLLM_API_KEY")
_ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=(.*)$")


class KeyFileError(Exception):
    """A key file that cannot be made or read safely; the message says why and what to do."""


def config_home() -> Path:
    """``$XDG_CONFIG_HOME`` when it is set to an absolute path (the XDG rule: empty or relative
    values are ignored), else ``~/.config``."""
    value = os.environ.get("XDG_CONFIG_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".config"


def default_key_path() -> Path:
    return config_home() / "saigen-vllm" / "api_key.env"


def _check_private_folder(folder: Path) -> None:
    info = folder.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise KeyFileError(f"{folder} is not a plain directory (a symlink?): remove it first")
    if info.st_uid != os.getuid():
        raise KeyFileError(
            f"{folder} belongs to another user: a key written there is theirs to read or "
            "replace. Set XDG_CONFIG_HOME to a directory of your own."
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise KeyFileError(f"{folder} is open to other users: chmod 700 {folder}")


def _check_parent(parent: Path) -> None:
    """Whoever may write in the parent may swap the key folder for their own."""
    info = parent.stat()
    if info.st_uid not in (os.getuid(), 0):
        raise KeyFileError(
            f"{parent} belongs to another user. Set XDG_CONFIG_HOME to a directory of your own."
        )
    if stat.S_IMODE(info.st_mode) & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise KeyFileError(f"{parent} is writable by other users: chmod go-w {parent}")


def write_key_file(key: str, path: Path | None = None, *, force: bool = False) -> Path:
    """Write ``SAIGEN_VLLM_API_KEY=`` and ``VLLM_API_KEY=`` lines to ``path`` (default
    ``$XDG_CONFIG_HOME/saigen-vllm/api_key.env``), readable by you alone."""
    path = path or default_key_path()
    folder = path.parent
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_parent(folder.parent)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    _check_private_folder(folder)
    if os.path.lexists(path) and not force:
        raise KeyFileError(
            f"{path} already holds a key: servers and clients using it would stop working. "
            "Pass --force to replace it, or keep using it with --api-key-file."
        )
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".api_key.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write("".join(f"{name}={key}\n" for name in KEY_NAMES))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)  # replaces a symlink itself, never its target
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_key_file(path: Path) -> str:
    """The key in ``path``: a bare key, or ``NAME=key`` lines as :func:`write_key_file` writes."""
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise KeyFileError(f"{path} is readable by other users: chmod 600 {path}")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("#")]
    values = {}
    for line in lines:
        found = _ASSIGNMENT.match(line.removeprefix("export "))
        if found:
            values[found.group(1)] = found.group(2).strip().strip("'\"")
    for name in KEY_NAMES:
        if values.get(name):
            return values[name]
    if len(lines) == 1 and not values:
        return lines[0]
    raise KeyFileError(f"{path} holds no key: write the key alone, or a line {KEY_NAMES[0]}=KEY")
