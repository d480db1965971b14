"""Drop numba's on-disk caches of this project when any of its sources changed.

numba keys a cached function on the modification time of *its own* file. A kernel that calls
into another module (``stored_steps`` -> ``block_fields``, ``fill_block_normals``) keeps its
old machine code when only the callee's file changes, e.g. after a ``git pull`` in an
editable install: silently stale numbers. At the first import of ``solvers.numerics`` (before
any kernel can load a cache) the sources of the ``dmft`` and ``solvers`` packages are hashed;
when the hash differs from the one stamped next to the caches, their cache files are deleted
(numba recompiles once). Installing a new version rewrites every file, so that case was already
safe; this covers edits in place. An unwritable package directory (numba then caches
elsewhere, keyed on the same mtimes) is left alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["drop_stale_caches"]

_PACKAGES = ("dmft", "solvers")
_STAMP = "numba-sources.sha256"


def drop_stale_caches(root: Path | None = None) -> None:
    """Delete the packages' numba cache files if the sources changed since the last call.

    ``root`` is the directory holding the ``dmft`` and ``solvers`` packages (default: this
    installation's); every sub-package is included.
    """
    root = Path(__file__).resolve().parents[2] if root is None else Path(root)
    dirs = [root / name for name in _PACKAGES if (root / name).is_dir()]
    digest = hashlib.sha256()
    for d in dirs:
        for path in sorted(d.rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            digest.update(rel.encode() + b"\0" + path.read_bytes())
    stamp = root / "solvers" / "__pycache__" / _STAMP
    try:
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return
        for d in dirs:
            for pattern in ("*.nbi", "*.nbc"):
                for path in d.rglob(f"__pycache__/{pattern}"):
                    path.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_suffix(f".{id(digest)}.tmp")
        tmp.write_text(digest.hexdigest())
        tmp.replace(stamp)  # atomic: concurrent importers see the old or the new stamp
    except OSError:
        return
