"""API key files: never through a symlink, never into someone else's folder, never over an
existing key without --force; read back for --api-key-file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from saigen_vllm._keyfile import (
    KeyFileError,
    config_home,
    default_key_path,
    read_key_file,
    write_key_file,
)


def private(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


def test_written_0600_with_both_names(tmp_path: Path) -> None:
    path = write_key_file("sk-1", private(tmp_path / "cfg") / "saigen-vllm" / "api_key.env")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == "SAIGEN_VLLM_API_KEY=sk-1\nVLLM_API_KEY=sk-1\n"
    assert read_key_file(path) == "sk-1"


def test_an_existing_key_is_kept_unless_forced(tmp_path: Path) -> None:
    path = private(tmp_path / "cfg") / "saigen-vllm" / "api_key.env"
    write_key_file("sk-old", path)
    with pytest.raises(KeyFileError, match="--force"):
        write_key_file("sk-new", path)
    assert read_key_file(path) == "sk-old"
    write_key_file("sk-new", path, force=True)
    assert read_key_file(path) == "sk-new"
    assert [p.name for p in path.parent.iterdir()] == ["api_key.env"]  # no temporary left


def test_a_symlink_is_replaced_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    folder = private(private(tmp_path / "cfg") / "saigen-vllm")
    link = folder / "api_key.env"
    link.symlink_to(victim)
    with pytest.raises(KeyFileError, match="already holds a key"):
        write_key_file("sk-1", link)
    write_key_file("sk-1", link, force=True)
    assert victim.read_text() == "precious\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not link.is_symlink() and read_key_file(link) == "sk-1"


def test_a_folder_open_to_others_is_refused(tmp_path: Path) -> None:
    folder = private(tmp_path / "cfg") / "saigen-vllm"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(KeyFileError, match="chmod 700"):
        write_key_file("sk-1", folder / "api_key.env")
    assert list(folder.iterdir()) == []


def test_a_parent_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(KeyFileError, match="writable by other users"):
        write_key_file("sk-1", shared / "saigen-vllm" / "api_key.env")
    assert list(shared.iterdir()) == []


def test_a_symlinked_key_folder_is_refused(tmp_path: Path) -> None:
    parent = private(tmp_path / "cfg")
    elsewhere = private(tmp_path / "elsewhere")
    (parent / "saigen-vllm").symlink_to(elsewhere)
    with pytest.raises(KeyFileError, match="not a plain directory"):
        write_key_file("sk-1", parent / "saigen-vllm" / "api_key.env")


@pytest.mark.parametrize("value", ["", "relative/dir"])
def test_empty_or_relative_xdg_config_home_is_ignored(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", value)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_home() == tmp_path / ".config"
    assert default_key_path() == tmp_path / ".config" / "saigen-vllm" / "api_key.env"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("sk-bare\n", "sk-bare"),
        ("c2stYmFzZTY0a2V5==\n", "c2stYmFzZTY0a2V5=="),  # a bare key may end in '='
        ("# comment\nexport VLLM_API_KEY='sk-quoted'\n", "sk-quoted"),
        ("OTHER=1\nSAIGEN_VLLM_API_KEY=sk-named\n", "sk-named"),
    ],
)
def test_read_key_file_forms(text: str, key: str, tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(text)
    path.chmod(0o600)
    assert read_key_file(path) == key


def test_read_key_file_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("OTHER=1\n")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="holds no key"):
        read_key_file(path)
    with pytest.raises(KeyFileError, match="cannot read"):
        read_key_file(tmp_path / "missing")
    path.write_text("sk-1\n")
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="chmod 600") as caught:
        read_key_file(path)
    assert "sk-1" not in str(caught.value)


@pytest.mark.skipif(not hasattr(os, "chown") or os.geteuid() != 0, reason="needs root to chown")
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    parent = private(tmp_path / "cfg")
    folder = private(parent / "saigen-vllm")
    os.chown(folder, 65534, 65534)
    with pytest.raises(KeyFileError, match="another user"):
        write_key_file("sk-1", folder / "api_key.env")
    os.chown(parent, 65534, 65534)
    with pytest.raises(KeyFileError, match="another user"):
        write_key_file("sk-1", parent / "saigen-vllm" / "api_key.env")
