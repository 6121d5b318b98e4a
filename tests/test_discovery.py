from __future__ import annotations

import sys
from pathlib import Path

import pytest

from saigen_vllm.discovery import (
    PluginLoadError,
    conflicts,
    list_providers,
    load_provider,
    try_load_all,
)


def make_dist(
    root: Path, dist: str, version: str, entries: dict[str, str], modules: dict[str, str]
) -> None:
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[saigen.providers]"] + [f"{name} = {target}" for name, target in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_dist(
        tmp_path,
        "saigen-broken",
        "0.1",
        {"broken": "broken_plugin_mod:Provider"},
        {"broken_plugin_mod": "raise RuntimeError('needs a GPU driver')\n"},
    )
    make_dist(
        tmp_path,
        "saigen-shadow",
        "9.9",
        {"vllm": "shadow_plugin_mod:Provider"},
        {"shadow_plugin_mod": "class Provider:\n    pass\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("broken_plugin_mod", "shadow_plugin_mod"):
        sys.modules.pop(name, None)
    return tmp_path


def test_ours_is_listed_without_import() -> None:
    entries = {e.name: e for e in list_providers()}
    assert entries["vllm"].target == "saigen_vllm.provider:VLLMProvider"
    assert entries["vllm"].distribution == "saigen-vllm"
    assert entries["vllm"].version


def test_listing_imports_nothing_and_survives_broken_plugins(plugins: Path) -> None:
    entries = list_providers()
    names = [(e.name, e.distribution) for e in entries]
    assert ("broken", "saigen-broken") in names
    assert "broken_plugin_mod" not in sys.modules
    assert "shadow_plugin_mod" not in sys.modules


def test_broken_plugin_reported_with_dist_and_error(plugins: Path) -> None:
    results = {(r.entry.name, r.entry.distribution): r for r in try_load_all()}
    broken = results[("broken", "saigen-broken")]
    assert not broken.ok
    assert broken.error == "RuntimeError: needs a GPU driver"
    assert results[("vllm", "saigen-vllm")].ok  # the others still load
    with pytest.raises(PluginLoadError, match=r"saigen-broken 0.1.*needs a GPU driver"):
        load_provider("broken")


def test_name_clash_reports_both_and_the_winner(plugins: Path) -> None:
    clash = conflicts(list_providers())["vllm"]
    assert [c.distribution for c in clash] == ["saigen-shadow", "saigen-vllm"]
    assert clash[0].wins and not clash[1].wins
    assert load_provider("vllm").__module__ == "shadow_plugin_mod"


def test_unknown_name() -> None:
    with pytest.raises(LookupError, match=r"installed: .*vllm"):
        load_provider("nope")
