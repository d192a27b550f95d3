"""What a newcomer's console shows: our lines, not the backend's start-up logging; errors before the backend loads."""
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

MAIN = os.path.join(REPO, "Code", "main.py")
TINY = ["--data", "DEMO", "--epoch", "1", "--dilation_size", "2", "--split_fold", "2", "--batch_size", "8", "--no-xla"]
BACKEND_LOG = re.compile(r"^[IWEF]\d{4} |absl|cuInit|cudart|oneDNN|TensorRT")


def _clean_env(**extra):
    """The environment of a fresh shell: none of the logging settings the suite itself sets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "KERAS_", "CUDA_", "XLA_"))}
    return dict(env, PYTHONPATH=REPO, **extra)


def _run(cwd, *argv, entry=(MAIN,), **env):
    return subprocess.run([sys.executable, *entry, *argv], cwd=cwd, env=_clean_env(**env), capture_output=True, text=True,
                          timeout=600)


@pytest.mark.jax_pass  # subprocesses in a clean environment (TensorFlow): either pass can run it; make test's JAX pass has room
@pytest.mark.slow
def test_train_then_test_print_no_backend_log_lines_and_one_line_of_our_own(tmp_path):
    train = _run(tmp_path, "--mode", "train", *TINY, entry=("-m", "timnet_keras"))  # as the installed package
    # An installed package never writes beside itself: ./MFCC (DEMO generated when missing), ./Models, ./Results.
    assert sorted(os.listdir(tmp_path)) == ["MFCC", "Models", "Results"], train.stderr[-2000:]
    assert os.listdir(tmp_path / "MFCC") == ["DEMO.npz"] and len(os.listdir(tmp_path / "Models")) == 1
    test = _run(tmp_path, "--mode", "test", "--data", "DEMO")
    for done in (train, test):
        assert done.returncode == 0, done.stderr[-2000:]
        noise = [line for line in done.stderr.splitlines() if BACKEND_LOG.search(line)]
        assert not noise, noise
        assert "backend: tensorflow" in done.stdout and "device: CPU" in done.stdout and "precision: float32" in done.stdout
    assert test.stdout.splitlines()[0].startswith("run: Models/DEMO_46_")  # the run it picked, before anything else
    assert "(timnet, 1 epochs, 2 folds, float32, trained " in test.stdout.splitlines()[0]
    verbose = _run(tmp_path, "--mode", "test", "--data", "DEMO", "--verbose")
    assert verbose.returncode == 0 and any(BACKEND_LOG.search(line) for line in verbose.stderr.splitlines())


CHECK = """
import sys
from timnet_keras import cli
try:
    status = cli.main(sys.argv[1:])
except SystemExit as stop:  # the early checks exit this way
    status = stop.code
print(status, sorted(m for m in ("tensorflow", "keras", "jax") if m in sys.modules))
"""


@pytest.mark.parametrize("argv,words", [
    (["--mode", "test", "--test_path", "/no/such/run"], "/no/such/run: no such folder"),
    (["--mode", "predict", "--test_path", "RUN", "--wav", "/no/such.wav"], "--wav: no such file: /no/such.wav"),
    (["--mode", "predict", "--test_path", "RUN", "--wav", "x.wav", "--window", "1", "--hop", "2"], "--hop 2 is longer"),
])
def test_a_wrong_path_or_flag_is_refused_before_the_backend_is_imported(tmp_path, argv, words):
    from timnet_keras.runs.store import authors_run_config, write_run_config

    run = tmp_path / "RUN"  # a run folder with its config and two (empty) fold files: enough to be chosen
    run.mkdir()
    write_run_config(str(run), authors_run_config("EMODB", 2))
    for fold in (1, 2):
        (run / f"2-fold_weights_best_{fold}.hdf5").write_bytes(b"")
    done = subprocess.run([sys.executable, "-c", CHECK, *argv], cwd=tmp_path, env=_clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.split("\n")[-2].endswith("2 []"), (done.stdout, done.stderr[-1000:])  # exit 2, no backend loaded
    assert words in done.stderr


def test_cuda_visible_devices_of_the_user_is_left_alone_without_gpu(monkeypatch):
    from timnet_keras.device import setup_device

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    setup_device(None)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
