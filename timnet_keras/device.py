"""Device set-up: the Keras backend, the CUDA device, and a quiet start.

TensorFlow's C++ start-up writes to the process' stderr before any logging
setting is read ("All log messages before absl::InitializeLog()", "Could not
find cuda drivers", a cuInit "ERROR" on every machine without a GPU). They
read like failures. So the backend is imported with file descriptor 2 sent
to a temporary file, and what it caught is replayed without the lines known
to be start-up noise: real warnings still reach the user. `verbose` keeps
everything.
"""
import contextlib
import importlib.util
import os
import re
import sys
import tempfile

from timnet_keras.errors import InputError
from timnet_keras.inputs import check_gpu

# Start-up lines of TensorFlow, XLA and CUDA stubs that say nothing about the user's run.
STARTUP_NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called",
    r"cudart_stub\.cc.*Could not find cuda drivers",
    r"cuda_platform\.cc.*failed call to cuInit",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"oneDNN custom operations are on",
    r"TF-TRT Warning: Could not find TensorRT",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions:.*rebuild TensorFlow",
    r"absl::InitializeLog",
    r"^\s*$",
]))


@contextlib.contextmanager
def quiet_stderr(verbose=False):
    """Sends fd 2 to a temporary file inside the block, then replays it without `STARTUP_NOISE`."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode("utf-8", "replace").splitlines():
                if not STARTUP_NOISE.search(line):
                    print(line, file=sys.stderr)


def setup_device(gpu=None, backend=None, precision="float32", verbose=False):
    """Selects the backend and the CUDA device (memory growth); prints one line: backend, device, precision.

    `gpu` sets CUDA_VISIBLE_DEVICES; when None, the user's own setting stands.
    """
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if gpu is not None:
        check_gpu(gpu)
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    if backend:
        if importlib.util.find_spec(backend) is None:
            raise InputError(f"--backend {backend}: {backend} is not installed; pip install {backend}")
        loaded = sys.modules.get("keras")
        if loaded is not None and loaded.backend.backend() != backend:  # refuse before touching the environment
            raise InputError(f"--backend {backend}: Keras was already imported with {loaded.backend.backend()}; "
                             f"set KERAS_BACKEND={backend} before starting Python")
        os.environ["KERAS_BACKEND"] = backend
    with quiet_stderr(verbose):
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            version = tf.__version__
            gpus = tf.config.list_physical_devices("GPU")
            for device in gpus:
                tf.config.experimental.set_memory_growth(device, True)
        else:
            import jax

            from timnet_keras.training.jax_compiler import configure_jax_compiler

            configure_jax_compiler()  # before JAX starts its backend: the schedule is read then
            version = jax.__version__
            gpus = [d for d in jax.devices() if d.platform == "gpu"]
    where = f"GPU {os.environ.get('CUDA_VISIBLE_DEVICES', '0')}" if gpus else "CPU (no GPU found)"
    print(f"backend: {keras.backend.backend()} {version}, device: {where}, precision: {precision}")
