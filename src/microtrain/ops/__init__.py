"""Operators: one module per operator (or per family of one-line variants).

Each module registers its ops with `registry.register`. Modules are discovered
automatically, so adding an op is adding a module (plus its C kernel)."""
import importlib
import pkgutil

ALL_OP_MODULES = [
    importlib.import_module(f"{__name__}.{m.name}")
    for m in pkgutil.iter_modules(__path__)
    if m.name not in ("registry",) and not m.name.startswith("_")
]
