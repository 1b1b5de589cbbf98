"""A catalog and its store know each other, so that a typo in ``--store`` or an NFS
mount that is down is refused in one line instead of read as "every shard is gone".

The catalog keeps a ``store_id`` (``catalog_settings``) and the store a marker file
with the same id at its root.  Opening a store checks them against each other:

* both agree: the store is this catalog's;
* the marker names another id: another catalog's store, refused;
* the catalog has an id, or indexes shards, and the folder is missing, empty or has
  no marker (nor any of the catalog's shards): refused -- a mount or a typo;
* a pair from before ids (the catalog indexes shards, the folder holds them): both
  get one id, said in one line;
* a catalog that indexes nothing yet: the store is created (nothing can be lost).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

from vida.catalog.database import Catalog
from vida.catalog.records.settings import get_setting, set_setting
from vida.catalog.records.shards import indexed_shard_paths
from vida.clock import utcnow
from vida.store.errors import ShardDamaged, ShardMissing, StoreError, StoreUnreachable

MARKER = "VIDA_STORE.json"
STORE_ID = "store_id"
_SAMPLE = 20  # shards looked for in a store from before ids


class StoreMismatch(StoreError):
    """The store folder given is not this catalog's store."""


def _read_marker(root: Path) -> str | None:
    try:
        return json.loads((root / MARKER).read_text())["store_id"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreMismatch(f"store {root}: its marker {MARKER} cannot be read ({exc}); "
                            "check the folder's permissions and mount") from None


def _write_marker(root: Path, store_id: str, catalog: Catalog) -> None:
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{MARKER}.partial"
    partial.write_text(json.dumps({"store_id": store_id, "catalog": catalog.url,
                                   "created_at": utcnow().isoformat()}) + "\n")
    partial.replace(root / MARKER)


def _is_empty(root: Path) -> bool:
    return not root.is_dir() or not any(root.iterdir())


def _refuse(catalog: Catalog, root: Path, what: str) -> StoreMismatch:
    return StoreMismatch(f"store {root} {what}, but it is where catalog "
                         f"{catalog.path or catalog.url} keeps its features: check that it is "
                         "mounted, the path for a typo, and --store / VIDA_STORE (nothing was "
                         "changed)")


def bind_store(catalog: Catalog, root: Path, create: bool = True) -> str:
    """Check that ``root`` is ``catalog``'s store (creating -- unless ``create`` is
    false -- or adopting it where that loses nothing); returns the store id."""
    expected = get_setting(catalog, STORE_ID)
    found = _read_marker(root) if root.is_dir() else None
    if expected is not None:
        if found == expected:
            return expected
        if found is not None:
            raise _another(catalog, root, found)
        raise _refuse(catalog, root, "is missing or empty" if _is_empty(root)
                      else f"has no {MARKER}")
    shards = indexed_shard_paths(catalog, _SAMPLE)
    holds_them = any((root / s).exists() for s in shards)
    if found is not None and not holds_them:
        raise _another(catalog, root, found)
    if found is None and shards and not holds_them:
        raise _refuse(catalog, root, "is missing or empty" if _is_empty(root)
                      else f"has no {MARKER} and none of its shards")
    if found is None and not shards and any(root.rglob("*.h5")):
        raise StoreMismatch(f"store {root} holds shards but no {MARKER}: another catalog's "
                            f"store? give catalog {catalog.path or catalog.url} a store of "
                            "its own (--store)")
    store_id = found or str(uuid.uuid4())
    if found is None and not create and not root.is_dir():
        raise StoreMismatch(f"store {root} does not exist: check --store / VIDA_STORE "
                            "(`vida-batch init` creates one)")
    if found is None:
        _write_marker(root, store_id, catalog)
    set_setting(catalog, STORE_ID, store_id)
    if shards:  # a pair from before store ids
        print(f"vida: catalog {catalog.path or catalog.url} and store {root} now know each "
              f"other (store id {store_id})", file=sys.stderr)
    return store_id


def _another(catalog: Catalog, root: Path, found: str) -> StoreMismatch:
    return StoreMismatch(f"store {root} belongs to another catalog (its store id {found} is "
                         f"not catalog {catalog.path or catalog.url}'s): check --store / "
                         "VIDA_STORE (nothing was changed)")


def shard_read_failure(root: Path, shard: Path, name: str, clip: str, detail: str
                       ) -> StoreError:
    """The error for a shard that could not be read, told apart by what is on disk:
    the store gone (no repair: remount), the shard alone gone (repair only if it is
    truly lost), the file unreadable (permissions), or its bytes damaged (repair)."""
    where = f"shard {shard} of {name} (clip {clip})"
    if not (root / MARKER).is_file():
        return StoreUnreachable(f"store {root} is no longer reachable ({where} and the store's "
                                f"{MARKER} are gone): remount it and rerun the command; "
                                "nothing was changed, do not run fsck --repair")
    if not shard.exists():
        return ShardMissing(f"{where} is missing from store {root}, which is mounted: if it "
                            "was moved, put it back; if it is lost, `vida-batch fsck --repair` "
                            "drops its rows and the job that made the set recomputes them")
    if not os.access(shard, os.R_OK):
        return StoreError(f"{where} cannot be read (permission denied): fix the file's "
                          "permissions and rerun; the shard is not damaged")
    return ShardDamaged(f"{where} is damaged ({detail}): run `vida-batch fsck --repair` to "
                        "quarantine it, then the job that made the set (ingest, encode, "
                        "generate) to recompute its clips")
