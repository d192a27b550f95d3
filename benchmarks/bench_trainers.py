"""The short run, whole command, per trainer and backend, side by side; and the authors' code when its path is given.

    python benchmarks/bench_trainers.py [--epochs 30] [--folds 2] [--authors PATH/TO/TIM-Net_SER/Code --authors-site DIR]

Every variant runs `main.py --mode train --data EMODB --epoch N --split_fold K --random_seed 46`
in a fresh process one after another (start-up, imports and compilation count), so their
ratios come from the same machine state. The authors' code (outside this repository) runs
with the same flags when --authors is given (see authors.py for what it needs); it is
skipped cleanly otherwise. Its accuracy is the mean of its folds' last-epoch accuracies,
which is what its script prints.
All runs share one fresh JAX compilation cache, so a JAX variant listed twice
runs cold (it compiles) and then warm (it loads the compiled step), as a
researcher's first and later short runs do.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import authors
from common import EMODB_WAV, REPO, emodb_workspace

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--folds", type=int, default=2)
authors.add_arguments(parser)
parser.add_argument("--variants", default="tensorflow:sequential,jax:sequential,jax:batched")
args = parser.parse_args()
if not os.path.isdir(EMODB_WAV):
    sys.exit(f"skipped: no Emo-DB at {EMODB_WAV}")
flags = emodb_workspace()
short = ["--mode", "train", "--data", "EMODB", "--epoch", str(args.epochs), "--split_fold", str(args.folds), "--random_seed", "46"]


def pooled_war(models):
    (run,) = glob.glob(os.path.join(models, "EMODB_*"))
    hits = total = 0
    for path in glob.glob(os.path.join(run, "fold_*.json")):
        record = json.load(open(path))
        predicted = [max(range(len(p)), key=p.__getitem__) for p in record["probabilities"]]
        hits += sum(int(a == b) for a, b in zip(predicted, record["y_true"]))
        total += len(predicted)
    return 100 * hits / total


rows = []
jax_cache = tempfile.mkdtemp(prefix="timnet-jax-cache-")
for variant in args.variants.split(","):
    backend, trainer = variant.split(":")
    shutil.rmtree(flags[5], ignore_errors=True)
    env = dict(os.environ, KERAS_BACKEND=backend, TIMNET_JAX_CACHE=jax_cache)
    cache = "" if backend != "jax" else (", cache warm" if os.listdir(jax_cache) else ", cache cold")
    start = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(REPO, "Code", "main.py"), *short, "--trainer", trainer, *flags],
                   check=True, capture_output=True, env=env)
    rows.append((f"ours, {backend}, {trainer}{cache}", time.perf_counter() - start, pooled_war(flags[5])))
    print(f"  done: {rows[-1][0]} {rows[-1][1]:.1f} s", flush=True)
if authors.available(args):
    work = authors.workspace(args, os.path.join(flags[1], "EMODB.npz"))
    start = time.perf_counter()
    stdout = authors.run(args, work, "main.py", *short)
    rows.append(("the authors' code (mean of fold accuracies)", time.perf_counter() - start, authors.average_accuracy(stdout)))
    shutil.rmtree(work, ignore_errors=True)
else:
    print("the authors' code: skipped (give --authors PATH or TIMNET_AUTHORS_CODE)")
fastest = min(seconds for _, seconds, _ in rows)
print(f"EMODB, {args.folds} folds x {args.epochs} epochs, whole command (s):")
for name, seconds, war in rows:
    print(f"  {name:44s} {seconds:6.1f} s  ({seconds / fastest:.2f}x the fastest)  pooled WAR {war:.2f}")
