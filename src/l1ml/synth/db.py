"""The job database: one SQLite file on local disk behind every backend (local queue, Slurm, HTCondor).

Where: `$L1ML_STATE` (default `~/.local/state/l1ml`)/jobs.sqlite, job folders beside it in `jobs/`.
SQLite's locking is unreliable on network filesystems, so a state folder on NFS, AFS, CIFS, Lustre,
GPFS, CephFS or sshfs is refused (point `L1ML_STATE` at a local disk). A database SQLite cannot read (corrupted,
or not SQLite at all) is refused with what to do, never worked around.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from l1ml.documents import SynthResult, parse
from l1ml.errors import L1mlError
from l1ml.synth.jobs import AGAIN

if TYPE_CHECKING:
    from l1ml.documents import SynthResult

NETWORK_FS = ("nfs", "nfs4", "afs", "cifs", "smb3", "smbfs", "lustre", "gpfs", "ceph", "fuse.sshfs", "fuse.glusterfs",
              "beegfs", "fuse.ceph-fuse", "9p")
UNREADABLE = ("SQLITE_NOTADB", "SQLITE_CORRUPT", "SQLITE_CANTOPEN")  # the file, not the moment, is at fault
COLUMNS = ("id", "kind", "model", "backend", "state", "dedup_key", "job_dir", "mem_gb", "cpus", "time_s", "submitted",
           "started", "ended", "host", "backend_id", "exit_code", "peak_mem_gb", "message", "result", "attempts", "reported")
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT, model TEXT, backend TEXT, state TEXT, dedup_key TEXT, job_dir TEXT,
    mem_gb REAL, cpus INTEGER, time_s INTEGER, submitted REAL, started REAL, ended REAL, host TEXT,
    backend_id TEXT, exit_code INTEGER, peak_mem_gb REAL, message TEXT, result TEXT, attempts INTEGER DEFAULT 1,
    reported REAL  -- when a `wait` reported how the job ended
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT);
"""


def state_dir() -> Path:
    return Path(os.environ.get("L1ML_STATE") or Path.home() / ".local" / "state" / "l1ml")


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding `path`, from /proc/mounts (longest matching mount point)."""
    path = Path(path).resolve()
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3:
            mount = parts[1].replace("\\040", " ")
            if (str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
                best, kind = mount, parts[2]
    return kind


@dataclass
class Job:
    id: str
    kind: str
    model: str
    backend: str
    state: str
    dedup_key: str
    job_dir: str
    mem_gb: float
    cpus: int
    time_s: int
    submitted: float
    started: float | None
    ended: float | None
    host: str | None
    backend_id: str | None
    exit_code: int | None
    peak_mem_gb: float | None
    message: str | None
    result: str | None
    attempts: int
    reported: float | None = None

    def recorded_result(self) -> SynthResult | None:
        """How the job ended, as the database recorded it (a copy of its result.json); None while it has not. A result an
        older l1ml recorded, or a damaged one, is one named error."""

        return parse(self.result, SynthResult, f"the result of job {self.id}", AGAIN) if self.result else None

    def elapsed(self, now: float | None = None) -> float | None:
        if self.started is None:
            return None
        return (self.ended or now or time.time()) - self.started


class JobDB:
    def __init__(self, root: Path | None = None):
        self.root = Path(root or state_dir())
        _make_folder(self.root)
        fs = filesystem_type(self.root)
        if fs in NETWORK_FS:
            raise L1mlError(f"the job database must be on a local disk, not {fs}; set L1ML_STATE to a local folder",
                            path=self.root, key="L1ML_STATE")
        self.path = self.root / "jobs.sqlite"
        self.jobs_dir = self.root / "jobs"
        _make_folder(self.jobs_dir)
        with self.connect() as db:
            db.executescript(SCHEMA)
        with self.transaction() as db:
            _add_reported_column(db)

    @contextmanager
    def connect(self):
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.row_factory = sqlite3.Row
                yield db
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorname not in UNREADABLE:
                raise
            raise L1mlError(f"not a job database SQLite can read ({exc}): move it away and run again for a new, empty one "
                            f"(the job folders in {self.jobs_dir} stay)", path=self.path) from None

    @contextmanager
    def transaction(self):
        """An exclusive transaction: the queue decisions (what fits, what starts) are made by one process at a time."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def insert(self, db, **fields) -> None:
        names = ", ".join(fields)
        db.execute(f"INSERT INTO jobs ({names}) VALUES ({', '.join('?' for _ in fields)})", tuple(fields.values()))

    def update(self, job_id: str, db=None, **fields) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        if db is None:
            with self.connect() as conn:
                conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))
        else:
            db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def record(self, job_id: str, result: SynthResult, db=None) -> None:
        """Store how a job ended (the result of `runner.finish`)."""
        self.update(job_id, db, state=result.state, ended=result.ended, exit_code=result.exit_code,
                    peak_mem_gb=result.peak_mem_gb, message=result.message, host=result.host,
                    result=result.model_dump_json())

    def end_unreadable(self, job_id: str, error: L1mlError, db=None) -> None:
        """End a job whose documents cannot be read (an older l1ml's, or damaged) as failed, with the error naming them."""
        self.update(job_id, db, state="failed", ended=time.time(), message=f"a document of the job cannot be read: {error}")

    def jobs(self, db=None, where: str = "1", args: tuple = ()) -> list[Job]:
        query = f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE {where} ORDER BY submitted"
        if db is None:
            with self.connect() as conn:
                rows = conn.execute(query, args).fetchall()
        else:
            rows = db.execute(query, args).fetchall()
        return [Job(**dict(row)) for row in rows]

    def mark_reported(self, job_ids: list[str]) -> None:
        with self.connect() as db:
            db.executemany("UPDATE jobs SET reported = ? WHERE id = ?", [(time.time(), job_id) for job_id in job_ids])

    def get(self, job_id: str, db=None) -> Job:
        found = self.jobs(db, "id = ?", (job_id,)) or self.jobs(db, "id LIKE ? OR id LIKE ?", (f"{job_id}%", f"%-{job_id}"))
        if len(found) != 1:
            raise L1mlError("no such job" if not found else f"{len(found)} jobs match; give more of the id",
                            key="JOB", value=job_id)
        return found[0]

    def setting(self, key: str, default: str | None = None) -> str | None:
        with self.connect() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.connect() as db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))


def _make_folder(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise L1mlError("is a file, not a folder: point L1ML_STATE at a folder on a local disk (or unset it for "
                        "~/.local/state/l1ml)", path=path, key="L1ML_STATE")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise L1mlError(f"cannot create this folder ({exc.strerror}): point L1ML_STATE at a folder you can write on a "
                        "local disk", path=path, key="L1ML_STATE") from None


def _add_reported_column(db) -> None:
    """Databases of earlier versions have no `reported`: the jobs that had ended count as reported."""
    if "reported" not in {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}:
        db.execute("ALTER TABLE jobs ADD COLUMN reported REAL")
        db.execute("UPDATE jobs SET reported = ended WHERE ended IS NOT NULL")
