"""Throughput of the training step: one process on every core against single-threaded processes side by side.

    python benchmarks/bench_workers.py [--workers 2]

XLA on the CPU does not keep several cores busy with one TIM-Net step, so a
grid of many units (Table 3) gets more done with one single-threaded process
per core, which is what `reproduce.py --executor ray --cpus-per-worker 1`
starts (its workers run TensorFlow with one intra-op thread). Each
measurement is `bench_train_step.py` in its own process: first one process
with the default threads, then `--workers` single-threaded ones at once.
Run it on a quiet machine.
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SINGLE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}

parser = argparse.ArgumentParser()
parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
args = parser.parse_args()


def start(extra_env):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", **extra_env)
    return subprocess.Popen([sys.executable, os.path.join(HERE, "bench_train_step.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def step_ms(process):
    out, _ = process.communicate()
    found = re.search(r"median ([\d.]+) ms", out)
    if process.returncode or not found:
        sys.exit(f"bench_train_step.py failed:\n{out[-2000:]}")
    return float(found.group(1))


one = step_ms(start({}))
side_by_side = [step_ms(p) for p in [start(SINGLE_THREAD) for _ in range(args.workers)]]
throughput = sum(1000 / ms for ms in side_by_side) / (1000 / one)
print(f"train step, one process, default threads ({os.cpu_count()} cores): {one:.1f} ms")
print(f"{args.workers} single-threaded processes side by side: " + ", ".join(f"{ms:.1f}" for ms in side_by_side) + " ms")
print(f"  steps per second: {throughput:.2f}x the one process's")
