"""Peak memory of a training run, per Keras backend, and where it goes.

For each backend that is installed (TensorFlow; JAX when present) it runs
`main.py --mode train --data EMODB --epoch 2` (10 folds; `--protocol kfold` and
`--protocol speaker`) in a child process and reads that child's own peak resident
set size, then profiles the same train step phase by phase: import, model build,
the one compiled step shape, then folds of three training sizes (which before
padding each compiled a step of their own). On JAX the k-fold run goes twice
over one fresh compilation cache: cold (it compiles) and warm (it loads the
compiled step, as every later run of the same shape does).
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

from common import EMODB_WAV, REPO, emodb_workspace

PROFILE = r"""
import json, re, sys
def rss():
    status = open("/proc/self/status").read()
    field = lambda key: int(re.search(key + r":\s+(\d+)", status).group(1)) // 1024
    return {"anon": field("RssAnon"), "file": field("RssFile")}
phases = [("start", rss())]
import keras
phases.append(("import keras (" + keras.backend.backend() + ")", rss()))
sys.path.insert(0, sys.argv[1])
from timnet_keras.runs.run_config import ModelConfig, TrainingConfig
from timnet_keras.training.sequential import SequentialTrainer
trainer = SequentialTrainer(ModelConfig(frames=188, num_classes=7), TrainingConfig(batch_size=64, epoch=1), 46)
trainer.compiled_model()
phases.append(("build and compile the model", rss()))
import numpy as np
trainer.warm_up()
phases.append(("the one train step compiled (batch 64)", rss()))
for fold, size in enumerate((481, 482, 430), start=1):
    x = np.zeros((size, 188, 39), np.float32); y = np.eye(7, dtype=np.float32)[np.arange(size) % 7]
    trainer.train_fold(fold, x, y)
    phases.append((f"a fold of {size} training rows", rss()))
print(json.dumps(phases))
"""


def peak_of_child(command, env):
    """(peak RSS in MiB, stdout, wall seconds) of one child process (its own rusage, not the largest of all children)."""
    start = time.time()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.time() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        sys.exit(f"failed ({child.returncode}): {' '.join(command)}\n{child.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, child.stdout.read().decode(), seconds


def backends():
    yield "tensorflow"
    if importlib.util.find_spec("jax") is None:
        print("jax not installed: JAX backend skipped (pip install -e .[test])")
        return
    yield "jax"


if not os.path.isdir(EMODB_WAV):
    sys.exit(f"skipped: no Emo-DB at {EMODB_WAV}")
dirs = emodb_workspace()
for backend in backends():
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", TIMNET_JAX_CACHE=tempfile.mkdtemp())
    runs = [("kfold", "")] if backend == "tensorflow" else [("kfold", ", compile cache cold"), ("kfold", ", compile cache warm")]
    for protocol, note in runs + [("speaker", "")]:
        peak, _, seconds = peak_of_child([sys.executable, os.path.join(REPO, "Code", "main.py"), "--mode", "train", "--data", "EMODB",
                                 "--epoch", "2", "--protocol", protocol, "--trainer", "sequential", *dirs], env)
        print(f"{backend}: peak memory of a training run (main.py, --protocol {protocol}, 10 folds x 2 epochs{note}): "
              f"{peak:.0f} MiB, {seconds:.1f} s")
    _, out, _ = peak_of_child([sys.executable, "-c", PROFILE, REPO], env)
    previous = None
    for name, now in json.loads(out.strip().splitlines()[-1]):
        grew = f" (+{now['anon'] + now['file'] - previous:.0f})" if previous is not None else ""
        print(f"  {name:34s} resident {now['anon'] + now['file']:5d} MiB{grew:8s}  anonymous {now['anon']:5d}, file-backed {now['file']:4d}")
        previous = now["anon"] + now["file"]
