"""Names of a package imported on first access (PEP 562), so that importing the package (and `pydarknet --help`)
costs nothing until a name is used.  ``pydarknet``, ``pydarknet.video`` and ``pydarknet.catalog`` use it."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Iterable, List, Mapping, Tuple


def lazy_names(package: str, namespace: Dict[str, Any], names: Mapping[str, str], public: Iterable[str],
               submodules: Iterable[str] = ()) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public name to the (relative) module defining
    it, ``submodules`` are reachable as attributes; a name once imported is stored in ``namespace`` (the package's
    globals()), so later lookups skip ``__getattr__``."""
    submodules = frozenset(submodules)
    listed = sorted(set(public))

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(listed))

    return __getattr__, __dir__
