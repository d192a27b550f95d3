"""Runs the authors' TIM-Net code (outside this repository) beside ours, for the side-by-side benchmarks.

Their `Code/` folder is copied into a scratch folder, so nothing is written into the
user's copy. It gets what their scripts read from their working directory:
`MFCC/EMODB.npy` (x and one-hot y from our cache, whose features equal theirs) and
`SER_WAV_DATA/EMODB/<class>/*.wav` (links to the Emo-DB files, one folder per class,
the layout their extractor reads).

Their code is TF-Keras 2 code: it runs with `TF_USE_LEGACY_KERAS=1` and the
`tf_keras` package. It also needs pandas, openpyxl, python_speech_features and
natsort, which are not our dependencies; `--authors-site DIR` adds a folder
holding them (`pip install --target DIR --no-deps tf_keras==2.21.* pandas openpyxl
et_xmlfile python_speech_features natsort tzdata pytz`) to the authors' runs only.
Two shims, both where their training script writes its results sheet: pandas 2 dropped
`DataFrame.to_excel(encoding=...)` (the wrapper drops the argument) and
`ExcelWriter.save()` (a no-op: their `close()`, called right after it, writes the file).
Everything else is their code, unchanged.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

# Runs one of their scripts as __main__ with the to_excel shim.
_RUNNER = """
import runpy, sys
import pandas
_to_excel = pandas.DataFrame.to_excel
def to_excel(self, *args, encoding=None, **kwargs):
    return _to_excel(self, *args, **kwargs)
pandas.DataFrame.to_excel = to_excel
pandas.ExcelWriter.save = lambda self: None  # their close() right after it writes the file
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""

# Times their compiled model's train step at batch 64 on the EMODB shape, in their own process.
_STEP = """
import argparse, sys, time
import numpy as np
sys.path.insert(0, ".")
from Model import TIMNET_Model
args = argparse.Namespace(lr=0.001, beta1=0.93, beta2=0.98, batch_size=64, epoch=1, dropout=0.1, random_seed=46,
                          activation="relu", filter_size=39, dilation_size=8, kernel_size=2, stack_size=1,
                          split_fold=10, model_path="Models/", result_path="Results/", data="EMODB")
model = TIMNET_Model(args=args, input_shape=(188, 39), class_label=tuple("abcdefg"))
model.create_model()
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 188, 39), dtype=np.float32)
y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, 64)]
for _ in range(3):
    model.model.train_on_batch(x, y)
times = []
for _ in range(20):
    start = time.perf_counter()
    model.model.train_on_batch(x, y)
    times.append(time.perf_counter() - start)
print("STEP_MS", 1000 * float(np.median(times)))
"""


def add_arguments(parser):
    parser.add_argument("--authors", default=os.environ.get("TIMNET_AUTHORS_CODE"),
                        help="the authors' Code/ folder (github.com/Jiaxin-Ye/TIM-Net_SER); skipped when absent")
    parser.add_argument("--authors-site", default=os.environ.get("TIMNET_AUTHORS_SITE"),
                        help="a folder with tf_keras, pandas, openpyxl, python_speech_features, natsort for their code")
    parser.add_argument("--authors-python", default=sys.executable, help="the interpreter for their code")


def available(args):
    return bool(args.authors) and os.path.isfile(os.path.join(args.authors, "main.py"))


def _code_copy(args):
    """A scratch folder holding a copy of their scripts."""
    work = tempfile.mkdtemp(prefix="timnet-authors-")
    for name in os.listdir(args.authors):
        if name.endswith(".py"):
            shutil.copy(os.path.join(args.authors, name), work)
    return work


def workspace(args, mfcc_cache, wav_root=None):
    """A scratch copy of their Code/ folder with their inputs in place; returns its path."""
    work = _code_copy(args)
    for folder in ("MFCC", "Models", "Results", "Test_Models"):
        os.makedirs(os.path.join(work, folder), exist_ok=True)
    cache = np.load(mfcc_cache, allow_pickle=False)
    np.save(os.path.join(work, "MFCC", "EMODB.npy"), {"x": cache["x"], "y": cache["y"]}, allow_pickle=True)
    if wav_root:
        from timnet_keras.features.corpora import read_corpus

        _, utterances = read_corpus("EMODB", wav_root)
        for utterance in utterances:
            folder = os.path.join(work, "SER_WAV_DATA", "EMODB", utterance.label)
            os.makedirs(folder, exist_ok=True)
            os.symlink(os.path.abspath(utterance.path), os.path.join(folder, os.path.basename(utterance.path)))
    return work


def run(args, work, script, *flags):
    """Runs their script in its workspace, whole process; returns its stdout (raises on failure)."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    if args.authors_site:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.authors_site, env.get("PYTHONPATH")]))
    done = subprocess.run([args.authors_python, "-c", _RUNNER, script, *flags], cwd=work, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the authors' {script} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def step_ms(args):
    """Median train-step time (ms) of their model, batch 64, EMODB shape, in a fresh process of theirs."""
    work = _code_copy(args)
    script = os.path.join(work, "time_step.py")
    with open(script, "w") as handle:
        handle.write(_STEP)
    stdout = run(args, work, script)
    shutil.rmtree(work, ignore_errors=True)
    return float(stdout.split("STEP_MS")[-1])


def average_accuracy(stdout):
    """Their training script's last 'Average ACC:' line, in percent."""
    lines = [line for line in stdout.splitlines() if line.startswith("Average ACC:")]
    return 100 * float(lines[-1].split(":")[1]) if lines else float("nan")
