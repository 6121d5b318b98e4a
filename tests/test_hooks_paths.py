"""Hook paths as a config file writes them: `pkg.mod:attr`, `pkg.mod.attr`, or a module itself
(`pkg.mod`, a submodule not imported yet), and clear errors for the rest."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from saigen_vllm.hooks import hooks_from_paths, load_dotted


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = tmp_path / "hookpkg_t"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "alerts.py").write_text(
        "seen = []\n"
        "def on_giveup(event):\n    seen.append(event)\n"
        "class Handlers:\n    def on_retry(self, event):\n        pass\n"
        "handlers = Handlers()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "hookpkg_t"
    for name in [n for n in sys.modules if n.startswith("hookpkg_t")]:
        del sys.modules[name]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("hookpkg_t.alerts", "module"),  # a submodule nobody imported: no AttributeError
        ("hookpkg_t.alerts:handlers", "Handlers"),
        ("hookpkg_t.alerts.handlers", "Handlers"),
        ("hookpkg_t.alerts:on_giveup", "function"),
    ],
)
def test_forms_that_load(package: str, path: str, kind: str) -> None:
    assert type(load_dotted(path)).__name__ == kind
    assert hooks_from_paths([path])  # registers at least one handler


@pytest.mark.parametrize(
    ("path", "error", "says"),
    [
        ("hookpkg_t.alerts:nope", ImportError, "has no attribute 'nope'"),
        ("hookpkg_t.nope", ImportError, "hookpkg_t has no attribute .nope."),
        ("no_such_top_level_xyz", ModuleNotFoundError, "no_such_top_level_xyz"),
        (":handlers", ImportError, "not a dotted path"),
    ],
)
def test_forms_that_fail_clearly(package: str, path: str, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        load_dotted(path)
