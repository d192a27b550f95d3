"""A shortened EMODB run (10 folds x N epochs) timed through main.py, projected to 500 epochs.

Projection: the first fold's extra time (warm-up compiles) plus 10 x 500 epochs at the
measured per-epoch time of the later folds.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

from common import EMODB_WAV, REPO

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()
if not os.path.isdir(EMODB_WAV):
    sys.exit(f"skipped: no Emo-DB at {EMODB_WAV}")
work = tempfile.mkdtemp()
dirs = ["--mfcc_path", os.path.join(work, "MFCC"), "--result_path", os.path.join(work, "Results"), "--model_path", os.path.join(work, "Models")]
subprocess.run([sys.executable, os.path.join(REPO, "Code", "extract_feature.py"), "--data_name", "EMODB", "--wav_dir", EMODB_WAV,
                "--mfcc_path", dirs[1]], check=True, capture_output=True)
start = time.perf_counter()
subprocess.run([sys.executable, os.path.join(REPO, "Code", "main.py"), "--mode", "train", "--data", "EMODB", "--epoch", str(args.epochs), *dirs],
               check=True, capture_output=True)
wall = time.perf_counter() - start
(run,) = glob.glob(os.path.join(dirs[5], "EMODB_*"))
seconds = [json.load(open(os.path.join(run, f"fold_{k}.json")))["seconds"] for k in range(1, 11)]
per_epoch = sum(seconds[1:]) / (9 * args.epochs)
overhead = wall - sum(seconds) + seconds[0] - per_epoch * args.epochs
projected = overhead + 10 * 500 * per_epoch
print(f"EMODB 10 folds x {args.epochs} epochs: {wall:.0f} s wall; folds {seconds}")
print(f"  {per_epoch:.2f} s per epoch after fold 1; fixed cost (start-up, warm-up compiles) {overhead:.0f} s")
print(f"  projected 10 folds x 500 epochs: {projected / 60:.0f} min (authors: about 300 min -> {300 * 60 / projected:.1f}x)")
