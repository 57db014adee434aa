"""Named registries, one per extension point (operators, probes, adapters, image-free methods, gap
metrics, selection methods), after DomainBed's algorithm registry and open_clip's model registry --
without a ``globals()[name]`` lookup: an entry is registered by a decorator in its own module, and
every module of the entry's package is imported when the registry is first read, so adding one is
one file (plus naming it in ``params.yaml``).
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, Iterator, TypeVar

from .errors import ParamsError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """``name -> entry`` for one kind of extension, read from the params key ``param``.

    ``package``: the dotted name of the package whose modules register entries (imported lazily).
    """

    def __init__(self, kind: str, param: str, package: str | None = None):
        self.kind, self.param, self.package = kind, param, package
        self._entries: dict[str, T] = {}
        self._loaded = package is None

    def register(self, name: str):
        """Decorator: ``@REGISTRY.register("name")`` on a class (its ``name`` attribute is set)."""
        def deco(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = entry
            try:
                entry.name = name
            except (AttributeError, TypeError):
                pass
            return entry
        return deco

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            pkg = importlib.import_module(self.package)
            for mod in pkgutil.iter_modules(pkg.__path__):
                importlib.import_module(f"{self.package}.{mod.name}")

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __getitem__(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            raise ParamsError(f"{self.param}: unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; "
                              f"choose from {sorted(self._entries)}")
        return self._entries[name]

    def check(self, names) -> list[str]:
        """``names`` if every one is registered, else the one-line error naming the first unknown one."""
        for n in names:
            self[n]
        return list(names)
