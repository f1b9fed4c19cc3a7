"""A search's study storage: Optuna's RDB storage at a SQLAlchemy URL (an SQLite file for one
machine or a shared disk, a database server such as postgresql://... for several machines).

Optuna 2.10 (what hydra-optuna-sweeper allows) stamps a new database's schema version on a
connection it never commits, which SQLAlchemy 2 rolls back: the next check then finds no version
and the uncommitted write keeps an SQLite file locked. The version is stamped here first, on a
connection that commits, so that Optuna finds a database it knows.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path
from typing import Any, Iterator

# the libraries' INFO lines (Alembic's plugin set-up and dialect, Optuna's "A new study created")
# are not news to the user: the search prints its own line about the study
LIBRARY_LOGGERS = ("alembic", "optuna")
# SQLAlchemy's connection pool logs, with a traceback, the cursor it could not close when Ctrl-C
# interrupts a query; the search then ends `interrupted` with its own paragraph, and a real
# storage error is raised (and shown) as an exception, never only logged
POOL_LOGGER = "sqlalchemy.pool"


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Alembic's and Optuna's loggers at WARNING for the duration, as they were afterwards."""
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def engine_options(url: str) -> dict[str, Any]:
    """An SQLite file waits up to a minute for a lock (several workers and their jobs write it
    at once) instead of failing at once."""
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {}


def stamp_schema(url: str) -> None:
    """Create Optuna's tables at `url` and record their schema version, committed, when the
    database has none yet. Workers that start together take turns (an SQLite file's lock); on a
    database server, one that lost the race to create the tables finds them made and checks
    again."""
    import sqlalchemy

    with storage_lock(url):
        try:
            _stamp(url)
        except sqlalchemy.exc.DatabaseError:  # another worker created them in the meantime
            _stamp(url)


def _stamp(url: str) -> None:
    import alembic.migration
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _VersionManager

    engine = sqlalchemy.create_engine(url, **engine_options(url))
    try:
        models.BaseModel.metadata.create_all(engine)
        with engine.begin() as connection:
            context = alembic.migration.MigrationContext.configure(connection)
            if context.get_current_revision() is None:
                manager = _VersionManager.__new__(_VersionManager)
                manager.url = url
                script = manager._create_alembic_script()
                context.stamp(script, script.get_current_head())
    finally:
        engine.dispose()


@contextlib.contextmanager
def storage_lock(url: str) -> Iterator[None]:
    """Processes that share an SQLite file take turns while this is held (an exclusive flock on
    `<file>.lock`); other storages have their own locking, and this does nothing. Not
    re-entrant: a process must not take it while it holds it."""
    if not url.startswith("sqlite:///"):
        yield
        return
    try:
        handle = open(Path(url[len("sqlite:///"):] + ".lock"), "a")
    except OSError:  # no such folder: opening the database will say so
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shown_url(url: str) -> str:
    """`url` as it may be printed or written to a file: its password, if any, hidden."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (not a URL SQLAlchemy reads: Optuna will say so)
        return url


def open_storage(url: str) -> Any:
    """Optuna's RDB storage at `url`, its schema created and stamped when new."""
    import optuna

    logging.getLogger(POOL_LOGGER).setLevel(logging.CRITICAL)

    with quiet_libraries():
        stamp_schema(url)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_options(url))
