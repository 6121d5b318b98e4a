"""Loading the entry point, creating the provider and is_available() stay cheap (no SDK import)."""

from __future__ import annotations

from tests.support.interpreter import run_fresh

HEAVY = ["openai", "httpx", "rich", "tenacity", "click", "prometheus_client", "anyio"]


def test_entry_point_path_imports_no_heavy_module() -> None:
    out = run_fresh(
        f"""
        import json, sys
        from importlib.metadata import entry_points
        (ep,) = [e for e in entry_points(group="saigen.providers") if e.name == "vllm"]
        cls = ep.load()
        provider = cls({{"base_url": "http://gb10:8000/v1", "model": "m"}})
        assert provider.is_available()
        provider.get_model_info()
        print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
        """
    )
    assert out == []


def test_package_import_is_lazy() -> None:
    out = run_fresh(
        """
        import json, sys
        import saigen_vllm
        print(json.dumps([saigen_vllm.__version__, "pydantic" in sys.modules]))
        """
    )
    assert out[1] is False
