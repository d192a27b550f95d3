"""Shared helpers for the benchmarks: paths to ../shared and a same-run GEMM yardstick."""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SHARED = os.environ.get("TIMNET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
EMODB_WAV = os.path.join(SHARED, "corpora", "EMODB")
EMODB_46 = os.path.join(SHARED, "pretrained", "EMODB_46")


def gemm_gflops(n=2048, repeats=5):
    """float32 matrix-product throughput of this machine, now (the compute yardstick)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median_ms(function, repeats=20, warmup=3):
    for _ in range(warmup):
        function()
    return 1000 * float(np.median([_timed(function) for _ in range(repeats)]))


def emodb_workspace():
    """A fresh folder with Emo-DB's features extracted; returns main.py's --mfcc/--result/--model_path flags."""
    work = tempfile.mkdtemp()
    flags = ["--mfcc_path", os.path.join(work, "MFCC"), "--result_path", os.path.join(work, "Results"),
             "--model_path", os.path.join(work, "Models")]
    subprocess.run([sys.executable, os.path.join(REPO, "Code", "extract_feature.py"), "--data_name", "EMODB",
                    "--wav_dir", EMODB_WAV, "--mfcc_path", flags[1]], check=True, capture_output=True)
    return flags
