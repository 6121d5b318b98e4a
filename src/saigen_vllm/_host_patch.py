"""The entry-point contract, applied to an unmodified saigen in this process (``saigen-vllm run``).

Published saigen maps a config key through a fixed enum to its own providers, drops every config
key its model does not know (``base_url``, ``endpoints``, ``hooks``, ...), skips named instances
such as ``vllm_gb10``, and retries a provider's failures on top of the provider's own retries.
:func:`apply` changes exactly that, in memory, the way ``ddtrace-run`` instruments a program:

- **config**: each config file's ``llm_providers`` entries that name a plugin are kept as written
  (every key) for the plugin; saigen's own config model sees only ``provider``, ``enabled`` and
  ``model`` of them, so its types cannot reject a plugin's keys;
- **manager**: entries whose ``provider:`` field, key, or key prefix (``vllm_gb10`` -> ``vllm``)
  names a ``saigen.providers`` plugin get that plugin's class, constructed with the whole entry
  as written; the host's retry count is 0 for a plugin that says ``handles_retries`` (this one:
  it retries what is transient and nothing else, with the entry's ``max_retries``); every other
  entry goes through saigen's own code unchanged;
- **names**: ``--llm-provider vllm_gb10`` is accepted wherever saigen converts a provider name.

Before touching anything it checks that saigen has the shape patched here, and stops with one
message naming the saigen version and the fix when it does not. A saigen that already discovers
plugins itself (``docs/host-integration.md``) is left alone.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import inspect
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("saigen_vllm")

MANAGER = "saigen.llm.provider_manager"
CONFIG = "saigen.utils.config"
GENERATION = "saigen.models.generation"
HOST_KEYS = ("priority", "enabled", "max_retries", "provider")
PATCH_DOC = "docs/saigen-entry-points.patch"


class HostShapeError(RuntimeError):
    """saigen's internals are not the shape :func:`apply` patches."""


@dataclass(frozen=True)
class HostLoading:
    """How this package reaches saigen in this environment."""

    state: str
    """``native`` (saigen discovers plugins), ``run`` (use ``saigen-vllm run saigen``),
    ``absent`` (saigen is not importable) or ``unsupported`` (neither works)."""
    version: str
    detail: str


def saigen_version() -> str:
    from .discovery import distribution_version

    found = distribution_version("saigen")  # a source checkout on PYTHONPATH has no metadata
    return found or str(getattr(sys.modules.get("saigen"), "__version__", "unknown"))


def _import(name: str) -> Any:
    import importlib

    return importlib.import_module(name)


def discovers_natively(manager_module: Any) -> bool:
    """saigen's provider manager already looks up ``saigen.providers`` entry points."""
    if callable(getattr(manager_module, "resolve_provider_class", None)):
        return True
    try:
        return "saigen.providers" in inspect.getsource(manager_module)
    except (OSError, TypeError):
        return False


def _shape_problems(manager: Any, config: Any, generation: Any) -> list[str]:
    problems = []
    cls = getattr(manager, "LLMProviderManager", None)
    if not callable(getattr(cls, "_initialize_providers", None)):
        problems.append("LLMProviderManager._initialize_providers")
    provider_config = getattr(manager, "ProviderConfig", None)
    wanted = {"provider_class", "config", "priority", "enabled", "max_retries"}
    if not dataclasses.is_dataclass(provider_config) or not wanted <= {
        f.name for f in dataclasses.fields(provider_config)
    }:
        problems.append("ProviderConfig(provider_class, config, priority, enabled, max_retries)")
    if not isinstance(getattr(manager, "ProviderPriority", None), enum.EnumMeta):
        problems.append("ProviderPriority")
    if not callable(getattr(getattr(config, "ConfigManager", None), "_load_config_file", None)):
        problems.append("ConfigManager._load_config_file")
    if not isinstance(getattr(generation, "LLMProvider", None), enum.EnumMeta):
        problems.append("models.generation.LLMProvider")
    return problems


def inspect_host() -> HostLoading:
    """Which way this package reaches saigen here; imports saigen, patches nothing."""
    from . import _host

    if not _host.HOST_PRESENT:
        return HostLoading("absent", "", _host.HOST_IMPORT_ERROR or "saigen is not importable")
    version = saigen_version()
    try:
        manager, config, generation = _import(MANAGER), _import(CONFIG), _import(GENERATION)
    except Exception as exc:
        return HostLoading("unsupported", version, f"saigen's modules do not import: {exc}")
    if discovers_natively(manager):
        return HostLoading("native", version, "saigen loads saigen.providers plugins itself")
    problems = _shape_problems(manager, config, generation)
    if problems:
        return HostLoading(
            "unsupported",
            version,
            "saigen lacks what `saigen-vllm run` patches: " + ", ".join(problems),
        )
    return HostLoading(
        "run", version, "saigen does not discover plugins; `saigen-vllm run` adds it"
    )


# -- the patches -----------------------------------------------------------------------------


@dataclass
class _State:
    raw: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """``llm_providers`` entries as written in the config files read so far."""
    plugins: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Entry-point name -> entry point (not loaded)."""
    applied: bool = False


_state = _State()


def plugin_name(key: str, entry: Mapping[str, Any]) -> str | None:
    """The plugin an ``llm_providers`` entry names: its ``provider:`` field, its key, or the
    key's prefix before ``_`` (``vllm_gb10`` -> ``vllm``); ``None`` when no plugin has it."""
    kind = str(entry.get("provider") or key).lower()
    for name in (kind, kind.split("_", 1)[0]):
        if name in _state.plugins:
            return name
    return None


def _entry_as_written(key: str, given: Any) -> dict[str, Any]:
    """The entry from the config file when it was read there, else what the host holds (only
    the keys that were set, secrets revealed: the provider keeps them secret itself)."""
    if key in _state.raw:
        return copy.deepcopy(_state.raw[key])
    dump = getattr(given, "model_dump", None)
    data: dict[str, Any] = dict(dump(exclude_unset=True) if dump is not None else given)
    for name, value in list(data.items()):
        if hasattr(value, "get_secret_value"):
            data[name] = value.get_secret_value()
    return data


def _patch_config_loading(config_module: Any) -> None:
    manager_cls = config_module.ConfigManager
    original = manager_cls._load_config_file

    @functools.wraps(original)
    def _load_config_file(self: Any, path: Any) -> Any:
        data = original(self, path)
        providers = data.get("llm_providers") if isinstance(data, dict) else None
        if isinstance(providers, dict):
            for key, entry in providers.items():
                if not isinstance(entry, dict):
                    continue
                name = plugin_name(str(key), entry)
                if name is None:
                    continue
                _state.raw[str(key)] = copy.deepcopy(entry)
                # saigen's own model sees only what it needs (it requires `provider`, and its
                # types, e.g. an integer `timeout`, must not reject our keys); the provider
                # gets the entry as written
                providers[key] = {
                    "provider": name,
                    **{k: entry[k] for k in ("enabled", "model") if k in entry},
                }
        return data

    manager_cls._load_config_file = _load_config_file


def _patch_manager(manager_module: Any) -> None:
    manager_cls = manager_module.LLMProviderManager
    original = manager_cls._initialize_providers
    provider_config = manager_module.ProviderConfig
    priority_cls = manager_module.ProviderPriority

    @functools.wraps(original)
    def _initialize_providers(self: Any) -> None:
        everything = self.config
        ours: dict[str, Any] = {}
        theirs: dict[str, Any] = {}
        for key, given in everything.items():
            entry = _entry_as_written(key, given)
            name = plugin_name(key, entry)
            if name is None:
                theirs[key] = given
            else:
                ours[key] = (name, entry)
        self.config = theirs
        try:
            original(self)  # saigen's own providers, its own way
        finally:
            self.config = everything
        for key, (name, entry) in ours.items():
            priority = entry.pop("priority", None) or "medium"
            enabled = entry.pop("enabled", True)
            entry.pop("provider", None)
            try:
                provider_class = _state.plugins[name].load()
                if getattr(provider_class, "handles_retries", False):
                    host_retries = 0  # it retries what is transient itself (its max_retries)
                else:
                    host_retries = entry.pop("max_retries", 2)
                self.providers[key] = provider_config(
                    provider_class=provider_class,
                    config=entry,
                    priority=priority_cls(priority),
                    enabled=enabled,
                    max_retries=host_retries,
                )
            except Exception as exc:
                logger.error("Invalid provider configuration for '%s': %s", key, exc)
        order = list(everything)
        self.providers = dict(sorted(self.providers.items(), key=lambda kv: order.index(kv[0])))

    manager_cls._initialize_providers = _initialize_providers


def _patch_names(generation_module: Any) -> None:
    """``LLMProvider("vllm_gb10")`` is an instance name from the config, not an error."""
    names = generation_module.LLMProvider
    original: Callable[[Any], Any] = names._missing_

    def _missing_(cls: Any, value: Any) -> Any:
        if isinstance(value, str) and value in _state.raw:
            member = cls._value2member_map_.get(value)
            if member is None:
                member = str.__new__(cls, value)
                member._name_ = value.upper()
                member._value_ = value
                cls._value2member_map_[value] = member
            return member
        return original(value)

    names._missing_ = classmethod(_missing_)


def apply() -> HostLoading:
    """Patch saigen in this process (once); :class:`HostShapeError` when it cannot be."""
    loading = inspect_host()
    if loading.state in ("native", "absent") or _state.applied:
        return loading
    if loading.state == "unsupported":
        raise HostShapeError(
            f"saigen {loading.version}: {loading.detail}. Fix: upgrade this package "
            f"(pip install -U saigen-vllm), or apply {PATCH_DOC} to saigen so that it "
            "discovers plugins itself."
        )
    from .discovery import winning_entry_points

    _state.plugins = winning_entry_points()
    _patch_config_loading(_import(CONFIG))
    _patch_manager(_import(MANAGER))
    _patch_names(_import(GENERATION))
    _state.applied = True
    return loading


# -- running a program ---------------------------------------------------------------------------

HOST_CLI = "saigen.cli.main:main"
"""saigen's command line, for a source checkout on PYTHONPATH (no console script installed)."""


class ProgramNotFound(LookupError):
    pass


def _program(name: str) -> Callable[[], Any]:
    """A console script of this environment, ``saigen`` from a source checkout, or a .py file."""
    import runpy
    from pathlib import Path

    from importlib_metadata import entry_points

    found = list(entry_points(group="console_scripts", name=name))
    if found:
        return found[0].load()  # type: ignore[no-any-return]
    if name == "saigen":
        module, _, function = HOST_CLI.partition(":")
        try:
            return getattr(_import(module), function)  # type: ignore[no-any-return]
        except Exception as exc:
            raise ProgramNotFound(
                f"saigen's command line cannot be loaded here ({type(exc).__name__}: {exc}). "
                "Fix: install saigen into this environment, or put a sai-suite checkout on "
                "PYTHONPATH (Python >= 3.12)."
            ) from None
    if name.endswith(".py") and Path(name).is_file():
        return lambda: runpy.run_path(name, run_name="__main__")
    raise ProgramNotFound(
        f"{name!r} is neither a console script of this Python environment nor a .py file. "
        "Fix: install it here (`saigen-vllm run` runs it in this process), or use "
        "`saigen-vllm run -m MODULE ...`."
    )


def run_program(argv: list[str]) -> int:
    """Apply the contract, then run ``argv`` in this process and return its exit status.
    ``argv``: ``[PROGRAM, ARG...]`` or ``["-m", MODULE, ARG...]``."""
    import runpy

    if argv[0] == "-m":
        if len(argv) < 2:
            raise ProgramNotFound(
                "`-m` needs a module name, e.g. `saigen-vllm run -m saigen.cli.main`"
            )
        module = argv[1]
        try:
            import importlib.util

            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ProgramNotFound(
                f"no module {module!r} here. Fix: install it into this environment, or put it "
                "on PYTHONPATH."
            )
        sys.argv = [module, *argv[2:]]

        def entry() -> Any:
            return runpy.run_module(module, run_name="__main__", alter_sys=True)

    else:
        entry = _program(argv[0])
        sys.argv = list(argv)
    loading = apply()
    if loading.state == "absent":
        logger.warning("saigen is not importable here (%s): running without it", loading.detail)
    try:
        result = entry()
    except SystemExit as exit_:
        code = exit_.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0
