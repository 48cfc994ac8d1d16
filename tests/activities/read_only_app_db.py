"""Run in a mount namespace of its own (root): the app DB's file system read-only, then writable again.

Prints one line per write through the transaction runner, "ok" or the error, in each phase. Red
team 12: a worker that opened the file while its file system was read-only never wrote again,
because SQLite keeps a process's connections to the file read-only while any of them is open.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Connection, text

from core.database import create_engine
from core.transactions import TransactionRunner

WRITES_PER_PHASE = 3


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _hold_open(database: Path) -> subprocess.Popen[bytes]:
    """Another process keeps the file open (the bot, the dashboard), so its WAL files stay."""
    script = f"import sqlite3, time; sqlite3.connect({str(database)!r}).execute('SELECT 1 FROM t'); time.sleep(60)"
    return subprocess.Popen([sys.executable, "-c", script])


def _insert(connection: Connection) -> None:
    connection.execute(text("INSERT INTO t VALUES (1)"))


async def _writes(runner: TransactionRunner, phase: str) -> None:
    for attempt in range(WRITES_PER_PHASE):
        try:
            await runner.run(_insert)
            print(f"{phase} {attempt}: ok", flush=True)
        except Exception as error:  # the line says which
            print(f"{phase} {attempt}: {type(error).__name__}: {str(error).splitlines()[0]}", flush=True)


async def main(folder: Path) -> None:
    source, mounted = folder / "source", folder / "mounted"
    source.mkdir()
    mounted.mkdir()
    with sqlite3.connect(source / "app.db") as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (x INTEGER)")
    holder = _hold_open(source / "app.db")
    try:
        await asyncio.sleep(0.5)
        _mount("--bind", str(source), str(mounted))
        _mount("-o", "remount,bind,ro", str(mounted))
        engine = create_engine(f"sqlite+aiosqlite:///{mounted / 'app.db'}", sqlite_synchronous="NORMAL")
        runner = TransactionRunner(engine, sqlite_synchronous="NORMAL")
        async with engine.connect() as reader:  # the worker's reads hold the file too
            await reader.execute(text("SELECT count(*) FROM t"))
        await _writes(runner, "read-only")
        _mount("-o", "remount,bind,rw", str(mounted))
        await _writes(runner, "writable")
        await runner.close()
        await engine.dispose()
    finally:
        holder.kill()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
