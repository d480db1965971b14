"""Names of user functions: how messages name them and how a saved file finds them again."""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["describe", "reference", "resolve"]


def describe(fn: Callable) -> str:
    """``module.qualname`` of ``fn`` for messages (its ``repr`` when it has no name).

    Examples
    --------
    >>> import math
    >>> describe(math.sin)
    'math.sin'
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)):
        return repr(fn)
    return f"{module}.{qualname}"


def _lookup(module: str, qualname: str):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def reference(fn: Callable) -> dict:
    """Where ``fn`` can be imported from: ``{"module": ..., "qualname": ...}``.

    When it cannot be imported again (a lambda, a function defined inside another function or
    in ``__main__``, an object without a name), the dict also holds ``"unimportable"``: the
    reason, in words.

    Examples
    --------
    >>> import math
    >>> reference(math.cos)
    {'module': 'math', 'qualname': 'cos'}
    >>> reference(lambda x: x)["unimportable"]
    'a lambda, which cannot be imported'
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)):
        return {"module": str(module), "qualname": repr(fn),
                "unimportable": "an object without a module-level name (e.g. functools.partial)"}
    ref = {"module": module, "qualname": qualname}
    if qualname.split(".")[-1] == "<lambda>":
        ref["unimportable"] = "a lambda, which cannot be imported"
    elif "<locals>" in qualname:
        ref["unimportable"] = "defined inside a function, so it cannot be imported"
    elif module == "__main__":
        ref["unimportable"] = ("defined in __main__ (a script or notebook), which another "
                               "session cannot import")
    else:
        try:
            found = _lookup(module, qualname)
        except Exception as exc:  # a module that fails to import counts as not importable
            ref["unimportable"] = f"not importable ({type(exc).__name__}: {exc})"
        else:
            if found is not fn:
                ref["unimportable"] = "shadowed: that module attribute is another object"
    return ref


def resolve(ref: dict) -> Callable:
    """The function a :func:`reference` names, or LookupError with the reason in words.

    Importing the module runs its top-level code, as ``import`` does: load files from people
    you trust.

    Examples
    --------
    >>> import math
    >>> resolve({"module": "math", "qualname": "sin"}) is math.sin
    True
    """
    module, qualname = ref.get("module"), ref.get("qualname")
    if "unimportable" in ref:
        raise LookupError(f"{module}.{qualname} is {ref['unimportable']}")
    try:
        fn = _lookup(module, qualname)
    except Exception as exc:
        raise LookupError(f"{module}.{qualname} cannot be imported "
                          f"({type(exc).__name__}: {exc})") from None
    if not callable(fn):
        raise LookupError(f"{module}.{qualname} is not callable")
    return fn
