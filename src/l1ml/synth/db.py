"""The job database: one SQLite file on local disk behind every backend (local queue, Slurm, HTCondor).

Where: `$L1ML_STATE` (default `~/.local/state/l1ml`)/jobs.sqlite, job folders beside it in `jobs/`.
SQLite's locking is unreliable on network filesystems, so a state folder on NFS, AFS, CIFS, Lustre,
GPFS, CephFS or sshfs is refused (point `L1ML_STATE` at a local disk).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from l1ml.errors import L1mlError

NETWORK_FS = ("nfs", "nfs4", "afs", "cifs", "smb3", "smbfs", "lustre", "gpfs", "ceph", "fuse.sshfs", "fuse.glusterfs",
              "beegfs", "fuse.ceph-fuse", "9p")
COLUMNS = ("id", "kind", "model", "backend", "state", "dedup_key", "job_dir", "mem_gb", "cpus", "time_s", "submitted",
           "started", "ended", "host", "backend_id", "exit_code", "peak_mem_gb", "message", "result", "attempts")
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT, model TEXT, backend TEXT, state TEXT, dedup_key TEXT, job_dir TEXT,
    mem_gb REAL, cpus INTEGER, time_s INTEGER, submitted REAL, started REAL, ended REAL, host TEXT,
    backend_id TEXT, exit_code INTEGER, peak_mem_gb REAL, message TEXT, result TEXT, attempts INTEGER DEFAULT 1
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

    @property
    def result_data(self) -> dict:
        return json.loads(self.result) if self.result else {}

    def elapsed(self, now: float | None = None) -> float | None:
        if self.started is None:
            return None
        return (self.ended or now or time.time()) - self.started


class JobDB:
    def __init__(self, root: Path | None = None):
        self.root = Path(root or state_dir())
        self.root.mkdir(parents=True, exist_ok=True)
        fs = filesystem_type(self.root)
        if fs in NETWORK_FS:
            raise L1mlError(f"the job database must be on a local disk, not {fs}; set L1ML_STATE to a local folder",
                            path=self.root, key="L1ML_STATE")
        self.path = self.root / "jobs.sqlite"
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir(exist_ok=True)
        with self.connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def connect(self):
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

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

    def record(self, job_id: str, result: dict, db=None) -> None:
        """Store how a job ended (the result record of `runner.finish`)."""
        self.update(job_id, db, state=result["state"], ended=result["ended"], exit_code=result.get("exit_code"),
                    peak_mem_gb=result.get("peak_mem_gb"), message=result["message"], host=result.get("host"),
                    result=json.dumps(result))

    def jobs(self, db=None, where: str = "1", args: tuple = ()) -> list[Job]:
        query = f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE {where} ORDER BY submitted"
        if db is None:
            with self.connect() as conn:
                rows = conn.execute(query, args).fetchall()
        else:
            rows = db.execute(query, args).fetchall()
        return [Job(**dict(row)) for row in rows]

    def get(self, job_id: str, db=None) -> Job:
        found = self.jobs(db, "id = ? OR id LIKE ?", (job_id, f"{job_id}%"))
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
