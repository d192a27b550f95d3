"""JAX's compiler settings for training runs: the compile cache and the memory-first schedule."""
import importlib.util
import os
import subprocess
import sys

import pytest

from timnet_keras.jax_compiler import jaxlib_knows_the_schedule_flag

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
        "from timnet_keras.jax_compiler import configure_jax_compiler\n"
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
