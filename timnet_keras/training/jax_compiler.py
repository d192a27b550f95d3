"""How a JAX training process compiles and allocates: a persistent cache, a memory-first schedule, malloc settings.

On JAX, compiling the one train step is a large part of a short run's fixed
cost. With the compiled program on disk, the next run of the same shape loads
it instead: less start-up and about 100 MB less peak memory (BENCHMARKS.md;
tracing and lowering the step still happen, since they make the key). Keyed by
JAX on the program, the JAX version, the machine and XLA's flags, so a stale
entry is never used. On TensorFlow this does nothing: its
`--tf_xla_persistent_cache_directory` reads entries back on the CPU (about 4 s
less per run) but logs three ERROR lines at every load in TensorFlow 2.21, and
keys nothing by CPU type (BENCHMARKS.md, session 8).

XLA's CPU scheduler orders a program for concurrency by default, which keeps
more of a train step's buffers alive at once. Its memory-optimised order ran
the same numbers at the same step time with a 90 MB lower peak for a whole
EMODB run (BENCHMARKS.md). XLA reads that setting from `XLA_FLAGS` once, when
JAX starts its first backend; the flag is set only for that moment, so child
processes (a TensorFlow one would reject the flag) never inherit it.

glibc's malloc keeps freed memory for reuse, and on JAX that is most of the
step's buffers: allocated and freed every step, about 300 MB, from threads
that each get an arena of their own. Two settings hand it back instead: a
fixed 128 KiB mmap threshold (glibc raises its own up to 32 MiB as buffers
are freed, after which they stay on the heap) and two arenas. Together they
lowered the peak of a 10-fold run by about 90 MiB at the same step time
(BENCHMARKS.md, session 11). Set through `mallopt` before JAX starts its
threads, on glibc only, and not where the user chose either setting through
glibc's own environment variables.
"""
import ctypes
import os
import platform
import re

import keras

# An entry is about 0.4 MB (a compiled train step); the folder never outgrows this.
MAX_BYTES = 512 * 2**20
MEMORY_FIRST_SCHEDULE = "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"
# XLA ends the process on a flag it does not know, so only jaxlib releases seen to know it get it.
SCHEDULE_SINCE_JAXLIB = (0, 10, 2)
# mallopt(3) parameters, and the environment variables by which a user sets them instead.
MALLOC_SETTINGS = {"MALLOC_MMAP_THRESHOLD_": (-3, 128 * 1024), "MALLOC_ARENA_MAX": (-8, 2)}


def compilation_cache_dir():
    """$TIMNET_JAX_CACHE, else ~/.cache/timnet-keras/jax (per user; safe to delete)."""
    return os.environ.get("TIMNET_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "timnet-keras", "jax")


def configure_jax_compiler():
    """The cache and the memory-first schedule for this process when the backend is JAX; returns the cache folder, or None.

    The schedule applies when JAX has not started a backend yet in this
    process (a training run calls this before it builds its model), and
    only where `XLA_FLAGS` does not choose a CPU scheduler already.
    """
    if keras.backend.backend() != "jax":
        return None
    import jax

    _start_backend_with_memory_first_schedule(jax)
    path = compilation_cache_dir()
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)  # least recently used entries go first
    return path


def jaxlib_knows_the_schedule_flag(version):
    """Whether a jaxlib version string (e.g. '0.10.2', '0.11.0.dev20270101') is one that accepts the flag."""
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:3])
    return numbers >= SCHEDULE_SINCE_JAXLIB


def return_freed_buffers_to_the_system():
    """The malloc settings above for this process; returns the names of those it set (none off glibc)."""
    if platform.libc_ver()[0] != "glibc":
        return []
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return []
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return [name for name, (parameter, value) in MALLOC_SETTINGS.items()
            if name not in os.environ and mallopt(parameter, value) == 1]


_backend_started = False  # by us: the schedule and the malloc settings are decided once per process


def _start_backend_with_memory_first_schedule(jax):
    global _backend_started
    if _backend_started:
        return
    _backend_started = True
    return_freed_buffers_to_the_system()  # before XLA starts the threads whose arenas it limits
    import jaxlib

    flags = os.environ.get("XLA_FLAGS")
    if (flags and "xla_cpu_scheduler_type" in flags) or not jaxlib_knows_the_schedule_flag(jaxlib.__version__):
        return
    os.environ["XLA_FLAGS"] = f"{flags or ''} {MEMORY_FIRST_SCHEDULE}".strip()
    try:
        jax.devices()  # XLA parses XLA_FLAGS here, once per process; later calls change nothing
    finally:
        if flags is None:
            del os.environ["XLA_FLAGS"]
        else:
            os.environ["XLA_FLAGS"] = flags
