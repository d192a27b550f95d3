"""A shortened EMODB run (10 folds x N epochs) timed through main.py, projected to 500 epochs.

Projection: everything the short run spent outside the epoch loops (start-up, warm-up
compiles, fresh weights, test predictions, checkpoints: costs that do not grow with the
epoch count) once, plus 10 x 500 epochs at the median epoch time of folds 2-10. Each
fold's record holds the wall time of every epoch, so the two parts are measured apart.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

from common import EMODB_WAV, REPO, emodb_workspace

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()
if not os.path.isdir(EMODB_WAV):
    sys.exit(f"skipped: no Emo-DB at {EMODB_WAV}")
dirs = emodb_workspace()
start = time.perf_counter()
subprocess.run([sys.executable, os.path.join(REPO, "Code", "main.py"), "--mode", "train", "--data", "EMODB", "--epoch", str(args.epochs), *dirs],
               check=True, capture_output=True)
wall = time.perf_counter() - start
(run,) = glob.glob(os.path.join(dirs[5], "EMODB_*"))
records = [json.load(open(os.path.join(run, f"fold_{k}.json"))) for k in range(1, 11)]
epoch_seconds = [r["history"]["seconds"] for r in records]
per_epoch = statistics.median(s for fold in epoch_seconds[1:] for s in fold)
fixed = wall - sum(map(sum, epoch_seconds))
projected = fixed + 10 * 500 * per_epoch
print(f"EMODB 10 folds x {args.epochs} epochs: {wall:.0f} s wall; folds {[r['seconds'] for r in records]} s")
print(f"  epoch: median {per_epoch:.3f} s (folds 2-10); outside the epoch loops: {fixed:.0f} s "
      f"(start-up and warm-up compiles, then {(sum(r['seconds'] for r in records[1:]) - sum(map(sum, epoch_seconds[1:]))) / 9:.1f} s per later fold)")
print(f"  projected 10 folds x 500 epochs: {projected / 60:.0f} min (authors: about 300 min -> {300 * 60 / projected:.1f}x)")
