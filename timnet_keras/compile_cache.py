"""JAX's persistent compilation cache: a second run of the same shape skips XLA's compile.

On JAX, compiling the one train step is a large part of a short run's fixed
cost. With the compiled program on disk, the next run of the same shape loads
it instead: less start-up and about 100 MB less peak memory (BENCHMARKS.md;
tracing and lowering the step still happen, since they make the key). Keyed by
JAX on the program, the JAX version and the machine, so a stale entry is
never used. TensorFlow has no working equivalent on the CPU (its
`--tf_xla_persistent_cache_directory` cannot read back what it writes in
TensorFlow 2.21), so there this does nothing.
"""
import os

import keras

# An entry is about 0.4 MB (a compiled train step); the folder never outgrows this.
MAX_BYTES = 512 * 2**20


def compilation_cache_dir():
    """$TIMNET_JAX_CACHE, else ~/.cache/timnet-keras/jax (per user; safe to delete)."""
    return os.environ.get("TIMNET_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "timnet-keras", "jax")


def enable_compilation_cache():
    """Turns the cache on for this process when the backend is JAX; returns its folder, or None."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    path = compilation_cache_dir()
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)  # least recently used entries go first
    return path
