"""Batched C-simulation: the generated firmware C++, compiled with g++ into a shared library that runs
whole batches of events in one call, on every core.

- The weights are compiled in from the headers, the branch that HLS synthesis reads (hls4ml's own
  C-simulation loads them from text files at run time instead).
- The library is cached by content hash (sources, driver, compiler and flags): an unchanged project is
  not compiled again, a one-character change is. The cache lives in `$L1ML_CACHE` (default
  `~/.cache/l1ml`) under `csim/<hash>/`, written atomically.
- Inputs are passed as doubles and converted to the firmware's input type by the C++ (exact for
  inputs on the input grid); outputs come back as exact doubles (`to_double()`).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ml.errors import L1mlError

CXX = os.environ.get("CXX", "g++")
# GCC 12's checks behind the three -Wno- flags analyse the large static weight initialisers very slowly; turning them
# off changes no generated code and cut the demo AE's compile from 28 s to 8 s
FLAGS = ["-std=c++17", "-fPIC", "-shared", "-pthread", "-w",
         "-Wno-free-nonheap-object", "-Wno-mismatched-dealloc", "-Wno-mismatched-new-delete"]
DRIVER_VERSION = 1
LIBRARY = "libl1ml_csim.so"  # in the cache folder of a build, beside its sources
DRIVER_FILE = "l1ml_csim_driver.cpp"
BATCH_EVENTS = 16384  # events per call of the library when progress is shown


@dataclass(frozen=True)
class TopFunction:
    """The firmware's top-level function: `void name(in_type in[n_in], out_type out[n_out])`."""

    name: str
    header: str  # include path of its declaration, relative to the source root
    in_type: str
    n_in: int
    out_type: str
    n_out: int


@dataclass
class Sources:
    """A C++ project as {relative path: text}, the translation units to compile, include folders and the top function."""

    files: dict[str, str]
    units: list[str]
    include_dirs: list[str]
    top: TopFunction
    optimisation: str = "-O2"


DRIVER = """\
// l1ml batched C-simulation driver (generated; version {version})
#include <thread>
#include <vector>
#include "{header}"

namespace {{
void run_range(const double* in, double* out, long begin, long end) {{
    for (long e = begin; e < end; ++e) {{
        {in_type} x[{n_in}];
        {out_type} y[{n_out}];
        for (int i = 0; i < {n_in}; ++i) x[i] = in[e * {n_in} + i];
        {name}(x, y);
        for (int j = 0; j < {n_out}; ++j) out[e * {n_out} + j] = y[j].to_double();
    }}
}}
}}

extern "C" int l1ml_csim_n_in() {{ return {n_in}; }}
extern "C" int l1ml_csim_n_out() {{ return {n_out}; }}

extern "C" void l1ml_csim_batch(const double* in, double* out, long n, int threads) {{
    if (n <= 0) return;
    // the first event runs alone, so that function-local static tables are set up before any thread starts
    run_range(in, out, 0, 1);
    long rest = n - 1;
    if (threads < 1) threads = 1;
    if (rest < threads * 64L) threads = 1;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {{
        long begin = 1 + rest * t / threads, end = 1 + rest * (t + 1) / threads;
        pool.emplace_back(run_range, in, out, begin, end);
    }}
    for (auto& th : pool) th.join();
}}
"""


def cache_root() -> Path:
    return Path(os.environ.get("L1ML_CACHE") or Path.home() / ".cache" / "l1ml")


@functools.lru_cache(maxsize=1)
def compiler_version() -> str:
    try:
        return subprocess.run([CXX, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError) as exc:
        raise L1mlError(f"the C++ compiler {CXX!r} does not run ({exc}); install g++ (make test does)") from None


def driver_source(top: TopFunction) -> str:
    return DRIVER.format(version=DRIVER_VERSION, **top.__dict__)


def content_hash(sources: Sources) -> str:
    h = hashlib.sha256()
    for part in (compiler_version(), " ".join(FLAGS), sources.optimisation, driver_source(sources.top), " ".join(sources.units),
                 " ".join(sources.include_dirs)):
        h.update(part.encode() + b"\0")
    for rel in sorted(sources.files):
        h.update(rel.encode() + b"\0" + sources.files[rel].encode() + b"\0")
    return h.hexdigest()


@dataclass
class BuildResult:
    library: Path
    key: str
    cached: bool
    seconds: float  # compile time; 0 for a cache hit


def build(sources: Sources) -> BuildResult:
    """Compile `sources` with the batch driver into a shared library, or reuse the cached one."""
    key = content_hash(sources)
    final = cache_root() / "csim" / key[:24]
    library = final / LIBRARY
    if library.is_file():
        return BuildResult(library, key, True, 0.0)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_sources(tmp, sources)
        seconds = _compile(tmp, sources)
        into_cache(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BuildResult(library, key, False, seconds)


def _write_sources(folder: Path, sources: Sources) -> None:
    try:
        for rel, text in {**sources.files, DRIVER_FILE: driver_source(sources.top)}.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    except OSError as exc:
        raise _cache_error("cannot write the C-simulation sources into the cache", exc, folder) from None


def _compile(folder: Path, sources: Sources) -> float:
    """g++ in `folder`: the library and `build.txt` (the command, the compiler); returns the compile time in seconds."""
    cmd = [CXX, sources.optimisation, *FLAGS, *(f"-I{d}" for d in sources.include_dirs), DRIVER_FILE, *sources.units,
           "-o", LIBRARY]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "error" in line][:5]
        raise L1mlError("g++ failed to compile the firmware C-simulation:\n  " + "\n  ".join(errors or proc.stderr.splitlines()[-5:]),
                        path=folder)
    try:
        (folder / "build.txt").write_text(" ".join(cmd) + f"\n{compiler_version()}\ncompile seconds: {seconds:.1f}\n")
    except OSError as exc:
        raise _cache_error("cannot write into the cache", exc, folder) from None
    return seconds


def into_cache(built: Path, final: Path, library: str = LIBRARY) -> None:
    """Rename a finished build folder to its place in the cache (`library`: the glob of what it built). Another
    process may have put the same content-hashed
    build there first (the rename then fails because the folder exists): theirs is identical and stays. Any other
    failure (a full disk, no permission, ...) is an error naming the folder."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built, final)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and any(final.glob(library)):
            return
        raise _cache_error("cannot store the compiled C-simulation in the cache", exc, final) from None


def _cache_error(what: str, exc: OSError, path: Path) -> L1mlError:
    return L1mlError(f"{what}: {exc.strerror or exc} (set L1ML_CACHE to a writable folder with free space)", path=path)


class CsimLibrary:
    """A compiled firmware: `run(x)` evaluates a batch (events x n_in) and returns (events x n_out) float64."""

    def __init__(self, build_result: BuildResult, threads: int | None = None):
        self.build = build_result
        self._lib = ctypes.CDLL(str(build_result.library))
        self._lib.l1ml_csim_batch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
        self._lib.l1ml_csim_batch.restype = None
        self.n_in = self._lib.l1ml_csim_n_in()
        self.n_out = self._lib.l1ml_csim_n_out()
        self.threads = threads or len(os.sched_getaffinity(0))

    def run(self, x: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The firmware's outputs for the events `x`; with `progress`, in batches of BATCH_EVENTS: progress(0, events)
        before the first, progress(events done, events) after each."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"the firmware takes {self.n_in} inputs per event; got an array of shape {x.shape}")
        out = np.empty((len(x), self.n_out), dtype=np.float64)
        step = BATCH_EVENTS if progress else max(len(x), 1)
        if progress:
            progress(0, len(x))
        for start in range(0, len(x), step):
            end = min(start + step, len(x))
            self._lib.l1ml_csim_batch(x[start:end].ctypes.data, out[start:end].ctypes.data, end - start, self.threads)
            if progress:
                progress(end, len(x))
        return out


def compile_sources(sources: Sources, threads: int | None = None) -> CsimLibrary:
    return CsimLibrary(build(sources), threads)


# hls4ml projects ------------------------------------------------------------------------------------------

_TOP_RE = re.compile(r"void\s+(\w+)\s*\(\s*(\w+)\s+\w+\s*\[\s*(\d+)\s*\]\s*,\s*(\w+)\s+\w+\s*\[\s*(\d+)\s*\]\s*\)\s*;")
_WEIGHT_RE = re.compile(r"#ifndef __SYNTHESIS__\n[^\n]*;\n#else\n(.*?)\n#endif", re.S)
_LOAD_RE = re.compile(r"#ifndef __SYNTHESIS__\s*static bool loaded_weights = false;.*?#endif\n", re.S)


def hls4ml_sources(project_dir: Path, project: str) -> Sources:
    """The C++ of an hls4ml project (`hls4ml_prj/`), with the weights compiled in from their headers."""
    fw = Path(project_dir) / "firmware"
    header = fw / f"{project}.h"
    if not header.is_file():
        raise L1mlError("not an hls4ml project: the top-level header is missing", path=header)
    m = _TOP_RE.search(header.read_text())
    if not m:
        raise L1mlError("the top-level function must take one input and one output array (io_parallel)", path=header)
    top = TopFunction(m.group(1), f"firmware/{project}.h", m.group(2), int(m.group(3)), m.group(4), int(m.group(5)))
    files = {}
    for path in sorted(fw.rglob("*")):
        if path.is_file() and path.suffix in (".h", ".cpp", ".hpp"):  # not weights/*.txt: the headers hold the weights
            files[str(path.relative_to(project_dir))] = path.read_text()
    top_cpp = f"firmware/{project}.cpp"
    files[top_cpp], n = _LOAD_RE.subn("", files[top_cpp])
    if n != 1 and "load_weights_from_txt" in files[top_cpp]:
        raise L1mlError("cannot find the block that loads weights from text files", path=fw / f"{project}.cpp")
    for rel in [r for r in files if r.startswith("firmware/weights/")]:
        files[rel], n = _WEIGHT_RE.subn(r"\1", files[rel])
        if n != 1:
            raise L1mlError("expected one weight array declared for C-simulation and for synthesis", path=project_dir / rel)
    return Sources(files, [top_cpp], ["firmware", "firmware/ap_types"], top)
