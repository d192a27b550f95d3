"""Feature extraction of the 535 Emo-DB files, whole command: ours, and the authors' extractor when given.

    python benchmarks/bench_extract.py [--authors PATH/TO/TIM-Net_SER/Code --authors-site DIR]

Each is one fresh process (start-up and imports count): `Code/extract_feature.py
--data_name EMODB`, then their `extract_feature.py --data_name EMODB` (wav -> one CSV per
file -> .npy) on the same files. Prints both wall times, their ratio, the features'
fingerprint and the largest difference between the two feature arrays.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import authors
from common import EMODB_WAV, REPO

parser = argparse.ArgumentParser()
authors.add_arguments(parser)
args = parser.parse_args()
if not os.path.isdir(EMODB_WAV):
    sys.exit(f"skipped: no Emo-DB at {EMODB_WAV}")

mfcc = tempfile.mkdtemp(prefix="timnet-mfcc-")
start = time.perf_counter()
subprocess.run([sys.executable, os.path.join(REPO, "Code", "extract_feature.py"), "--data_name", "EMODB",
                "--wav_dir", EMODB_WAV, "--mfcc_path", mfcc], check=True, capture_output=True)
ours_s = time.perf_counter() - start
x = np.load(os.path.join(mfcc, "EMODB.npz"))["x"]
print(f"ours: extract 535 Emo-DB files, whole command ({os.cpu_count()} workers): {ours_s:.1f} s")
print(f"  x {x.shape}, mean {x.mean():.4f}, std {x.std():.4f} (reference -8.0481 / 68.0865)")
if authors.available(args):
    work = authors.workspace(args, os.path.join(mfcc, "EMODB.npz"), wav_root=EMODB_WAV)
    os.remove(os.path.join(work, "MFCC", "EMODB.npy"))
    start = time.perf_counter()
    authors.run(args, work, "extract_feature.py", "--data_name", "EMODB")
    theirs_s = time.perf_counter() - start
    theirs = np.load(os.path.join(work, "EMODB.npy"), allow_pickle=True).item()["x"]
    print(f"the authors' extractor, whole command: {theirs_s:.1f} s -> ours is {theirs_s / ours_s:.2f}x faster")
    if theirs.shape == x.shape:
        largest, top = np.abs(theirs - x).max(), np.abs(x).max()
        step = np.spacing(top)  # one float32 step at the size of the 0th coefficient
        print(f"  their x {theirs.shape}: {100 * (theirs != x).mean():.3f} % of values differ from ours, "
              f"largest |difference| {largest:.3g} = {largest / step:.2f} float32 step at |x| = {top:.0f} (summation order)")
    else:
        print(f"  their x {theirs.shape} differs in shape from ours")
    shutil.rmtree(work, ignore_errors=True)
else:
    print("the authors' extractor: skipped (give --authors PATH or TIMNET_AUTHORS_CODE)")
shutil.rmtree(mfcc, ignore_errors=True)
