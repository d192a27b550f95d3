"""The batched trainer's figures (for a GPU): a full run and several seeds as one program, whole command.

    python benchmarks/bench_batched.py [--data EMODB] [--mfcc_path MFCC] [--epochs 500] [--seeds 1,3] [--precision float32,bfloat16]

For each (seeds, precision) it times the whole command in a fresh process: one seed is
`main.py --mode train --trainer batched`, more seeds the reproduction grid with the same
trainer (every seed and fold of the cell as one program). It prints the wall time, the
time inside the program (the fold records' per-epoch seconds; the first chunk includes
the compile), the pooled UAR / WAR per seed, and, where `nvidia-smi` exists, the mean GPU
utilisation sampled every 0.5 s. The compile cache is a fresh folder per run, so every
figure includes its compile.
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

import numpy as np

from common import REPO

parser = argparse.ArgumentParser()
parser.add_argument("--data", default="EMODB")
parser.add_argument("--mfcc_path", default=os.path.join(REPO, "MFCC"))
parser.add_argument("--epochs", type=int, default=500)
parser.add_argument("--seeds", default="1,3")
parser.add_argument("--precision", default="float32,bfloat16")
parser.add_argument("--out", default=None, help="also write the figures as JSON here")
args = parser.parse_args()
if not os.path.isfile(os.path.join(args.mfcc_path, f"{args.data}.npz")):
    sys.exit(f"skipped: no {args.data}.npz in {args.mfcc_path} (extract it, or carry MFCC/ to the device)")


def gpu_sampler():
    if shutil.which("nvidia-smi") is None:
        return None
    return subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "500"],
                            stdout=subprocess.PIPE, text=True)


def pooled(records):
    """Pooled (UAR, WAR) in % of (y_true, probabilities) pairs."""
    y = np.concatenate([np.asarray(t) for t, _ in records])
    p = np.concatenate([np.argmax(np.asarray(q), 1) for _, q in records])
    recalls = [np.mean(p[y == c] == c) for c in np.unique(y)]
    return 100 * float(np.mean(recalls)), 100 * float(np.mean(p == y))


figures = []
for seeds in map(int, args.seeds.split(",")):
    for precision in args.precision.split(","):
        work = tempfile.mkdtemp()
        env = dict(os.environ, KERAS_BACKEND="jax", TIMNET_JAX_CACHE=os.path.join(work, "jax-cache"))
        if seeds == 1:
            command = [sys.executable, os.path.join(REPO, "Code", "main.py"), "--mode", "train", "--data", args.data,
                       "--epoch", str(args.epochs), "--trainer", "batched", "--precision", precision, "--mfcc_path",
                       args.mfcc_path, "--model_path", os.path.join(work, "Models"), "--result_path", os.path.join(work, "R")]
        else:
            if precision != "float32":
                continue  # the grid trains the paper's float32 only
            command = [sys.executable, os.path.join(REPO, "Code", "reproduce.py"), "--table", "1", "--corpora", args.data,
                       "--seeds", str(seeds), "--epoch", str(args.epochs), "--trainer", "batched", "--mfcc_path",
                       args.mfcc_path, "--registry", os.path.join(work, "registry"), "--report", os.path.join(work, "R.md")]
        sampler = gpu_sampler()
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        utilisation = None
        if sampler is not None:
            sampler.terminate()
            samples = [float(v) for v in sampler.communicate()[0].split() if v.replace(".", "").isdigit()]
            utilisation = round(float(np.mean(samples)), 1) if samples else None
        if done.returncode:
            sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
        if seeds == 1:
            paths = glob.glob(os.path.join(work, "Models", "*", "fold_*.json"))
            runs = {"46": [json.load(open(p)) for p in paths]}
        else:
            runs = {}
            for path in glob.glob(os.path.join(work, "registry", "records", "**", "*.json"), recursive=True):
                record = json.load(open(path))
                runs.setdefault(str(record["unit"]["seed"]), []).append(record)
        if seeds == 1:  # fold records keep each epoch's seconds (a chunk's time over its epochs)
            inside = max(sum(r["history"]["seconds"]) for rs in runs.values() for r in rs)
            first_chunk = max(r["history"]["seconds"][0] * min(25, args.epochs) for rs in runs.values() for r in rs)
        else:  # registry records keep each unit's share of the batch's time
            inside, first_chunk = sum(r["seconds"] for rs in runs.values() for r in rs), None
        accuracy = {seed: pooled([(r["y_true"], r["probabilities"]) for r in rs]) for seed, rs in sorted(runs.items())}
        row = {"data": args.data, "seeds": seeds, "precision": precision, "epochs": args.epochs, "wall_s": round(wall, 1),
               "program_s": round(inside, 1), "first_chunk_with_compile_s": first_chunk and round(first_chunk, 1),
               "gpu_utilisation_pct": utilisation, "pooled_uar_war": accuracy}
        figures.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(work, ignore_errors=True)
if args.out:
    with open(args.out, "w") as handle:
        json.dump(figures, handle, indent=1)
