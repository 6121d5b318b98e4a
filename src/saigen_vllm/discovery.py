"""Discovery of ``saigen.providers`` plugins, for hosts (and for ``saigen-vllm plugins``).

Listing reads installed metadata only: no plugin is imported until :func:`load_provider` is called
for it by name. A plugin that fails to import is reported with its distribution and the error, and
never breaks the listing. When two distributions claim one name, both are listed and the first in
``sys.path`` order wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GROUP = "saigen.providers"


@dataclass(frozen=True)
class ProviderEntry:
    """One entry point in the ``saigen.providers`` group."""

    name: str
    target: str
    distribution: str | None
    version: str | None
    wins: bool = True
    """False when an earlier distribution claims the same name."""


@dataclass(frozen=True)
class LoadResult:
    entry: ProviderEntry
    provider_class: type[Any] | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


class PluginLoadError(ImportError):
    """A provider plugin could not be imported; names its distribution and the cause."""

    def __init__(self, entry: ProviderEntry, cause: BaseException) -> None:
        dist = f"{entry.distribution} {entry.version}" if entry.distribution else "unknown dist"
        super().__init__(
            f"provider plugin {entry.name!r} ({entry.target}, from {dist}) failed to load: "
            f"{type(cause).__name__}: {cause}"
        )
        self.entry = entry


def _scan(group: str) -> list[tuple[ProviderEntry, Any]]:
    """One metadata scan (each ``entry_points()`` call re-reads every distribution)."""
    from importlib_metadata import entry_points

    seen: set[str] = set()
    found: list[tuple[ProviderEntry, Any]] = []
    for ep in entry_points(group=group):
        dist = getattr(ep, "dist", None)
        entry = ProviderEntry(
            name=ep.name,
            target=ep.value,
            distribution=dist.metadata["Name"] if dist is not None else None,
            version=dist.version if dist is not None else None,
            wins=ep.name not in seen,
        )
        seen.add(ep.name)
        found.append((entry, ep))
    return found


def winning_entry_points(group: str = GROUP) -> dict[str, Any]:
    """Name -> entry point (not loaded) of each name's winning claim."""
    return {entry.name: ep for entry, ep in _scan(group) if entry.wins}


def distribution_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or ``None``."""
    from importlib_metadata import PackageNotFoundError, version

    try:
        return str(version(name))
    except PackageNotFoundError:
        return None


def list_providers(group: str = GROUP) -> list[ProviderEntry]:
    """Every provider entry point, in ``sys.path`` order, without importing any of them."""
    return [entry for entry, _ in _scan(group)]


def conflicts(entries: list[ProviderEntry]) -> dict[str, list[ProviderEntry]]:
    """Names claimed by more than one distribution, with every claimant (the winner first)."""
    by_name: dict[str, list[ProviderEntry]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    return {name: claims for name, claims in by_name.items() if len(claims) > 1}


def _load(entry: ProviderEntry, ep: Any) -> type[Any]:
    try:
        loaded: type[Any] = ep.load()
    except Exception as exc:
        raise PluginLoadError(entry, exc) from exc
    return loaded


def load_provider(name: str, group: str = GROUP) -> type[Any]:
    """Import and return the provider class registered as ``name`` (the winning claim)."""
    scanned = _scan(group)
    for entry, ep in scanned:
        if entry.name == name and entry.wins:
            return _load(entry, ep)
    known = sorted({entry.name for entry, _ in scanned})
    raise LookupError(
        f"no provider named {name!r} in entry point group {group!r}; installed: "
        f"{', '.join(known) or '(none)'}"
    )


def try_load_all(group: str = GROUP) -> list[LoadResult]:
    """Load every entry point, each in isolation: a broken plugin is reported, never raised."""
    results: list[LoadResult] = []
    for entry, ep in _scan(group):
        try:
            results.append(LoadResult(entry, _load(entry, ep), None))
        except PluginLoadError as exc:
            results.append(
                LoadResult(
                    entry,
                    None,
                    str(exc.__cause__ and f"{type(exc.__cause__).__name__}: {exc.__cause__}"),
                )
            )
    return results
