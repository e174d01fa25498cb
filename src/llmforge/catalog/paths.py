"""Where a catalog's tables live, relative to the home that holds ``catalog.db``.

Paths under the home are stored relative to it, so a copied or moved home is self-contained: a
copy (``cp -a``) reads and writes its own tables, never the original's. A catalog written
before paths were relative is rebased the first time it is opened in a new place.
"""

from __future__ import annotations

from pathlib import Path

from llmforge.catalog import names
from llmforge.catalog.store import Store


def stored(home: Path, path: str | None) -> str | None:
    """``path`` as the catalog stores it: relative to ``home`` when it lies under it."""
    if not path:
        return path
    p = Path(path)
    if p.is_absolute() and p.resolve().is_relative_to(home):
        return p.resolve().relative_to(home).as_posix()
    return str(p)


def relocate(store: Store, home: Path) -> None:
    """Make absolute table paths relative to ``home``, once per new location (see above)."""
    here = str(home)
    rows = store.query("SELECT value FROM meta WHERE key = 'home'")
    if rows and rows[0]["value"] == here:
        return
    with store.write() as con:
        for r in con.execute("SELECT full_name, path FROM securables WHERE path LIKE '/%'").fetchall():
            path = Path(r["path"])
            if path.is_relative_to(here):
                rel = path.relative_to(here)
            else:  # written elsewhere: the same folder in this home, if the copy has it
                rel = Path(*path.parts[-(len(names.split(r["full_name"])) + 1) :])
                if not (home / rel).is_dir():
                    continue
            con.execute(
                "UPDATE securables SET path = ? WHERE full_name = ?", (rel.as_posix(), r["full_name"])
            )
        con.execute("INSERT OR REPLACE INTO meta VALUES ('home', ?)", (here,))


def delta_columns(path: str | None) -> list[str] | None:
    """Column names of the Delta table at ``path`` from its log; ``None`` when not readable here."""
    if not path or not (Path(path) / "_delta_log").is_dir():
        return None
    try:
        from deltalake import DeltaTable
    except ImportError:
        return None
    return [f.name for f in DeltaTable(path).schema().fields]
