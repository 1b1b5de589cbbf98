"""Opening the catalog: URLs, engines, write transactions, lock retries, user SQL.

DuckDB lets one process write a database file *or* many processes read it, never
both at once, and it holds the file lock for as long as a connection is open.  So
every engine here uses :class:`~sqlalchemy.pool.NullPool` (closing a connection
really closes it), jobs hold a write connection only around each commit
(:meth:`Catalog.transaction`), and any connect that meets a held lock is retried
with exponential backoff before failing with a message that names the holder.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Executable, create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from vida.catalog import revisions
from vida.catalog.readonly import check_read_only
from vida.errors import VidaError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_CATALOG = "catalog.db"
# see Catalog.change_stamp: file times this recent cannot tell two commits apart
RACY_SECONDS = 0.05
T = TypeVar("T")


class CatalogError(VidaError, RuntimeError):
    """A catalog problem with a one-line explanation of what to do."""


class CatalogLocked(CatalogError):
    """Another process held the DuckDB file lock for longer than we waited."""


class CatalogOutdated(CatalogError):
    """The catalog's schema revision is behind the code's."""


def resolve_url(path_or_url: str | os.PathLike[str] | None = None) -> str:
    """A SQLAlchemy URL from a URL, a DuckDB file path, ``$VIDA_CATALOG`` or the default."""
    value = str(path_or_url or os.environ.get("VIDA_CATALOG") or DEFAULT_CATALOG)
    if "://" in value:
        return value
    return f"duckdb:///{Path(value).expanduser().resolve()}"


def _lock_holder(message: str) -> str | None:
    """The 'process (PID n)' part of DuckDB's lock error, if present."""
    found = re.search(r"held in (.+?\(PID \d+\))", message)
    return found.group(1) if found else None


def _is_lock_error(exc: BaseException) -> bool:
    message = str(exc)
    return "Could not set lock" in message or "Conflicting lock" in message


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _is_driver_error(exc: BaseException) -> bool:
    """An error of the DB-API driver itself (duckdb.Error, psycopg.Error, ...)."""
    return any(c.__name__ in {"Error", "DatabaseError"} for c in type(exc).__mro__[1:])


def _is_unreachable(exc: BaseException) -> bool:
    """A server that refuses or cannot be reached (not a DuckDB file's lock)."""
    return type(getattr(exc, "orig", exc)).__name__ == "OperationalError" and (
        "connection" in str(exc).lower() and not _is_lock_error(exc))


def _unopenable_file(path: Path | None, exc: BaseException) -> CatalogError | None:
    """One line for a DuckDB file that DuckDB will not open: not a database, written
    by a newer DuckDB, or damaged; None for any other error."""
    message = str(getattr(exc, "orig", exc))
    if "not a valid DuckDB database file" in message:
        return CatalogError(f"catalog {path} is not a DuckDB database: check --catalog / "
                            "VIDA_CATALOG (a catalog is the .db file `vida-batch init` made)")
    if "newer version of DuckDB" in message or "can only read versions" in message:
        import duckdb

        return CatalogError(f"catalog {path} was written by a newer DuckDB than this one "
                            f"({duckdb.__version__}): upgrade it (`pip install -U duckdb`) "
                            "or open the catalog where it was written; the file is unchanged")
    if "Corrupt database file" in message:
        return CatalogError(f"catalog {path} is damaged ({_first_line(exc)}): restore it "
                            "from a backup (`vida-batch catalog copy` makes one)")
    return None


def lock_timeout() -> float:
    """Seconds to wait for a DuckDB lock (``$VIDA_LOCK_TIMEOUT``, default 30)."""
    return float(os.environ.get("VIDA_LOCK_TIMEOUT", "30"))


class Catalog:
    """A VIDA catalog at a SQLAlchemy URL (DuckDB file or PostgreSQL server)."""

    def __init__(self, url: str, *, check: bool = True, media_root: str | None = None,
                 create: bool = False) -> None:
        self.url = url
        # where this catalog's media is on this machine, when not where it was recorded
        # (a cluster that mounts the data elsewhere); ``VIDA_MEDIA_ROOT`` says the same
        override = media_root or os.environ.get("VIDA_MEDIA_ROOT")
        self.media_root_override = os.path.abspath(override) if override else None
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        if not create and self.is_duckdb and self.path is not None and not self.path.exists():
            raise CatalogError(f"catalog {self.path} does not exist: check --catalog / "
                               "VIDA_CATALOG, or create it with `vida-batch init`")
        if self.is_duckdb and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # created on first use
        self._engine = self._make_engine(read_only=False)
        self._ro_engine: Engine | None = None
        self._held: Connection | None = None  # see :meth:`held`
        if check:
            self.check_revision()

    def _unreachable(self, exc: BaseException) -> CatalogError:
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"
        cause = _first_line(getattr(exc, "orig", exc)).replace("connection failed: ", "")
        return CatalogError(f"cannot reach the catalog's server {where} ({cause}): check that "
                            "it is running and the URL's host, port and user, then rerun "
                            "the command (what was committed is kept)")

    # -- engines ---------------------------------------------------------
    @property
    def is_duckdb(self) -> bool:
        return self.dialect == "duckdb"

    @property
    def path(self) -> Path | None:
        """The DuckDB file, or None for a server catalog."""
        return Path(self.url.split(":///", 1)[1]) if self.is_duckdb else None

    def change_stamp(self) -> tuple | None:
        """A value that changes whenever a transaction commits, read without opening
        the database (a few ``stat`` calls, far cheaper than a DuckDB connect); None
        when there is no such value (a server catalog) or the files changed too
        recently to trust it.

        Every DuckDB commit writes the database file or its WAL.  File times have a
        coarse clock, so two commits inside one tick may leave the same times and
        sizes: as git does for its "racily clean" index entries, a stamp is only
        given once the newest file time is older than :data:`RACY_SECONDS`."""
        if not self.is_duckdb or self.path is None:
            return None
        stamp = []
        for path in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                stamp.append(None)
                continue
            if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_SECONDS * 1e9:
                return None
            stamp.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        return tuple(stamp)

    def _make_engine(self, *, read_only: bool) -> Engine:
        kwargs: dict[str, Any] = {"poolclass": NullPool}
        if self.is_duckdb and read_only:
            kwargs["connect_args"] = {
                "read_only": True,
                "config": {"enable_external_access": False},
            }
        return create_engine(self.url, **kwargs)

    @property
    def engine(self) -> Engine:
        return self._engine

    def _retry(self, fn: Callable[[], T], wait: float | None = None) -> T:
        """Call ``fn``, retrying while a DuckDB file lock is held elsewhere, for up to
        ``wait`` seconds (None: ``$VIDA_LOCK_TIMEOUT``, default 30; ``inf``: until it
        frees, saying once who holds it)."""
        limit = lock_timeout() if wait is None else wait
        deadline = time.monotonic() + limit
        start, told = time.monotonic(), False
        delay = 0.02
        while True:
            try:
                return fn()
            except DBAPIError as exc:
                if not self.is_duckdb and _is_unreachable(exc):
                    raise self._unreachable(exc) from None
                if self.is_duckdb and (refused := _unopenable_file(self.path, exc)):
                    raise refused from None
                if not _is_lock_error(exc):
                    raise
                holder = _lock_holder(str(exc)) or "another process"
                if time.monotonic() >= deadline:
                    raise CatalogLocked(
                        f"catalog {self.path} is in use by {holder} (reading or writing); "
                        "retry when it is closed, or raise VIDA_LOCK_TIMEOUT"
                    ) from None
                if not told and limit == float("inf") and time.monotonic() - start > 2:
                    print(f"vida: catalog {self.path} is in use by {holder} (a notebook "
                          "or another job?); waiting for it, nothing is lost",
                          file=sys.stderr, flush=True)
                    told = True
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextmanager
    def connect(self, *, read_only: bool = False, wait: float | None = None
                ) -> Iterator[Connection]:
        """A connection held only for the ``with`` block (releases the file lock);
        ``wait``: how long to wait for a lock held elsewhere (see :meth:`_retry`).
        Inside :meth:`held`, the held connection (reads too: DuckDB refuses a second
        connection of another configuration to a file this process has open)."""
        if self._held is not None:
            yield from self._reuse_held()
            return
        if read_only and self.is_duckdb:
            if self._ro_engine is None:
                self._ro_engine = self._make_engine(read_only=True)
            engine = self._ro_engine
        else:
            engine = self._engine
        conn = self._retry(engine.connect, wait)
        try:
            if read_only and not self.is_duckdb:
                conn = conn.execution_options(postgresql_readonly=True)
            yield conn
        except DBAPIError as exc:  # a server that went away mid-transaction: one line
            if self.is_duckdb or not (exc.connection_invalidated or _is_unreachable(exc)):
                raise
            raise self._unreachable(exc) from None
        finally:
            conn.close()

    def _reuse_held(self) -> Iterator[Connection]:
        """The held connection for one block; a read's implicit transaction is ended
        with it, as closing a connection of its own would have ended it."""
        conn = self._held
        assert conn is not None
        began = conn.in_transaction()
        try:
            yield conn
        finally:
            if not began and conn.in_transaction():
                conn.rollback()

    @contextmanager
    def held(self, wait: float | None = None) -> Iterator[None]:
        """One connection for every transaction and read of the block.

        A DuckDB connection costs an open and, at its close, a checkpoint; a driver
        that commits a burst of results (an experiment between two waits on its
        workers) pays them once per burst instead of once per transaction.  The file
        is released when the block ends: a job bounds how long it holds one (see
        :func:`vida.jobs.experiments.driver.PlanRunner._bursts`), so a reader elsewhere
        waits that long at most."""
        if self._held is not None:
            yield
            return
        if wait is None:
            wait = float(os.environ.get("VIDA_LOCK_TIMEOUT", "inf"))
        with self.connect(wait=wait) as conn:
            self._held = conn
            try:
                yield
            finally:
                self._held = None

    @contextmanager
    def transaction(self, wait: float | None = None) -> Iterator[Session]:
        """An ORM session in one transaction: commit on success, rollback on error.

        A job's write waits for a lock held elsewhere until it frees (a notebook
        reading the catalog must never kill a job), unless ``$VIDA_LOCK_TIMEOUT``
        says otherwise; ``wait`` overrides both."""
        if wait is None:
            wait = float(os.environ.get("VIDA_LOCK_TIMEOUT", "inf"))
        with self.connect(wait=wait) as conn, Session(bind=conn) as session:
            with conn.begin():
                yield session
                session.flush()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """An ORM session for reads only."""
        with self.connect(read_only=True) as conn, Session(bind=conn) as session:
            yield session

    # -- schema ----------------------------------------------------------
    def revision(self) -> str | None:
        # read-only where the file exists, so that opening a catalog a notebook is
        # reading does not wait for the notebook
        shared = self.is_duckdb and self.path is not None and self.path.exists()
        with self.connect(read_only=shared) as conn:
            return revisions.current_revision(conn)

    def check_revision(self) -> None:
        """Create an empty catalog; refuse one whose schema is behind the code."""
        current = self.revision()
        head = revisions.head_revision()
        if current == head:
            return
        from vida.catalog import migrate  # Alembic, only when there is something to do

        if current is None and not self._has_tables():
            self.upgrade()
            return
        pending = migrate.pending_revisions(current)
        if not pending:
            raise CatalogError(
                f"catalog {self.url} is at revision {current}, unknown to this VIDA "
                f"(head {head}); upgrade VIDA itself"
            )
        raise CatalogOutdated(
            f"catalog {self.url} is at revision {current}, behind {head} "
            f"({len(pending)} migration(s) pending): run `vida-batch upgrade`"
        )

    def _has_tables(self) -> bool:
        from sqlalchemy import inspect

        with self.connect() as conn:
            return bool(inspect(conn).get_table_names())

    def upgrade(self, revision: str = "head") -> list[str]:
        """Apply pending migrations; returns the revisions applied."""
        from vida.catalog import migrate

        with self.connect() as conn:
            before = migrate.current_revision(conn)
            migrate.upgrade(conn, revision)
            conn.commit()
        return migrate.pending_revisions(before) if revision == "head" else [revision]

    # -- user SQL --------------------------------------------------------
    def sql(self, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run the user's read-only SELECT and return its rows as a DataFrame.

        Refuses anything that writes, attaches or touches files
        (:class:`~vida.catalog.readonly.ReadOnlyViolation`) before running it.
        """
        import pandas as pd

        check_read_only(query)

        def run() -> pd.DataFrame:
            with self.connect(read_only=True) as conn:
                if params:
                    result = conn.execute(text(query), params)
                    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
                # Straight to the driver without parameters, so that a ':' or '%'
                # inside the user's SQL is never taken for a placeholder.
                if self.is_duckdb:  # DuckDB builds the DataFrame itself, column by column
                    return conn.connection.driver_connection.execute(query).df()
                cursor = conn.connection.cursor()
                try:
                    cursor.execute(query)
                    columns = [d[0] for d in cursor.description or []]
                    return pd.DataFrame(cursor.fetchall(), columns=columns)
                finally:
                    cursor.close()

        return _query_errors_in_one_line(run)

    def read(self, statement: Executable, params: dict[str, Any] | None = None
             ) -> pd.DataFrame:
        """A SELECT composed with SQLAlchemy (or text with bound ``params``) as a
        DataFrame: the records layer's reads.  The user's own SQL goes through
        :meth:`sql`."""
        import pandas as pd

        def run() -> pd.DataFrame:
            with self.connect(read_only=True) as conn:
                result = conn.execute(statement, params or {})
                return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

        return _query_errors_in_one_line(run)

    def dispose(self) -> None:
        self._engine.dispose()
        if self._ro_engine is not None:
            self._ro_engine.dispose()


def _query_errors_in_one_line(run: Callable[[], T]) -> T:
    """``run()``, a query's failure (not a lock: that is waited for) as one line."""
    try:
        return run()
    except DBAPIError as exc:
        if _is_lock_error(exc):
            raise
        raise CatalogError(f"query failed: {_first_line(exc.orig or exc)}") from None
    except Exception as exc:  # a driver error raised outside SQLAlchemy's wrapping
        if _is_lock_error(exc) or not _is_driver_error(exc):
            raise
        raise CatalogError(f"query failed: {_first_line(exc)}") from None


def open_catalog(
    path_or_url: str | os.PathLike[str] | None = None, *, check: bool = True,
    media_root: str | os.PathLike[str] | None = None, create: bool = False,
) -> Catalog:
    """Open the catalog at a path or SQLAlchemy URL.

    A DuckDB file that does not exist is refused in one line (a typo must not leave
    an empty catalog behind); ``create=True`` creates it, as ``vida-batch init`` and
    the writing jobs do.  ``check=False`` skips the revision check (for ``vida-batch
    upgrade``); ``media_root`` is where the catalog's media is mounted on this
    machine, when that is not the folder the catalog recorded.
    """
    return Catalog(resolve_url(path_or_url), check=check,
                   media_root=str(media_root) if media_root else None, create=create)
