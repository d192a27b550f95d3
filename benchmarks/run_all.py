"""Runs every benchmark in turn (make bench); each prints its own figures."""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
for script in ("bench_train_step.py", "bench_extract.py", "bench_test_predict.py", "bench_memory.py", "bench_trainers.py", "bench_workers.py", "bench_full_run.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, os.path.join(here, script)], check=False)
