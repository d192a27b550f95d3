"""JAX's compiler settings for training runs: the compile cache and the memory-first schedule."""
import importlib.util
import os
import platform
import subprocess
import sys

import pytest

from timnet_keras.training.jax_compiler import jaxlib_knows_the_schedule_flag, return_freed_buffers_to_the_system

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_only_jaxlib_releases_known_to_accept_the_schedule_flag_get_it():
    # XLA ends the whole process on an unknown flag, so an older jaxlib must keep its default schedule.
    assert jaxlib_knows_the_schedule_flag("0.10.2")
    assert jaxlib_knows_the_schedule_flag("0.11.0.dev20270101")
    assert not jaxlib_knows_the_schedule_flag("0.10.1")
    assert not jaxlib_knows_the_schedule_flag("0.4.30")


@pytest.mark.jax_pass
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_the_schedule_flag_is_not_left_in_the_environment_for_child_processes(tmp_path):
    # A TensorFlow child process aborts on XLA flags its XLA does not know; the user's own flags stay as they were.
    script = (
        "import os\n"
        "from timnet_keras.training.jax_compiler import configure_jax_compiler\n"
        "assert configure_jax_compiler()\n"
        "print('unset:', os.environ.get('XLA_FLAGS'))\n"
        "os.environ['XLA_FLAGS'] = '--xla_cpu_enable_fast_math=false'\n"
        "configure_jax_compiler()\n"
        "print('user:', os.environ.get('XLA_FLAGS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(KERAS_BACKEND="jax", TIMNET_JAX_CACHE=str(tmp_path / "jax-cache"))
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unset: None" in done.stdout
    assert "user: --xla_cpu_enable_fast_math=false" in done.stdout


# A 1 MiB block freed and asked for again: glibc's own threshold rises past it at the free, so the second block
# comes from the heap and stays there after its free; with the threshold fixed it is mapped and unmapped each time.
MALLOC_PROBE = (
    "import ctypes, os, sys\n"
    "sys.path.insert(0, os.getcwd())\n"
    "if sys.argv[1] == 'configured':\n"
    "    from timnet_keras.training.jax_compiler import configure_jax_compiler\n"
    "    configure_jax_compiler()\n"
    "class Info(ctypes.Structure):\n"
    "    _fields_ = [(name, ctypes.c_size_t) for name in\n"
    "                ('arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost').split()]\n"
    "libc = ctypes.CDLL(None)\n"
    "libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)\n"
    "libc.free.argtypes, libc.mallinfo2.restype = (ctypes.c_void_p,), Info\n"
    "libc.free(libc.malloc(2**20))\n"
    "before = libc.mallinfo2().hblks\n"
    "block = libc.malloc(2**20)\n"
    "print('mapped' if libc.mallinfo2().hblks > before else 'heap')\n"
    "libc.free(block)\n"
)


@pytest.mark.jax_pass
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")
def test_a_jax_training_process_hands_freed_step_buffers_back_to_the_system(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(KERAS_BACKEND="jax", TIMNET_JAX_CACHE=str(tmp_path / "jax-cache"))

    def probe(mode, **extra):
        done = subprocess.run([sys.executable, "-c", MALLOC_PROBE, mode], env=dict(env, **extra), cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    assert probe("plain") == "heap"  # glibc's default: the freed block's size raised the threshold
    assert probe("configured") == "mapped"
    assert probe("configured", MALLOC_MMAP_THRESHOLD_=str(2**22)) == "heap"  # the user's own setting wins


def test_the_malloc_settings_are_left_alone_off_glibc(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", ""))
    assert return_freed_buffers_to_the_system() == []
