"""Training-step time at batch 64, EMODB shape, against the same-run GEMM throughput and the authors' step.

    python benchmarks/bench_train_step.py [--precision bfloat16] [--no-xla] [--authors PATH --authors-site DIR]

A step is about 7.3 GFLOP (REFERENCE.md). Prints the median of 20 steps after
warm-up, the GFLOP/s that implies, and its share of a large float32 GEMM. With
--authors, their model's step is timed the same way in its own process right after
ours, so the ratio comes from one machine state (see authors.py).
"""
import argparse

import numpy as np

import authors
from common import gemm_gflops, median_ms

STEP_GFLOP = 7.3

parser = argparse.ArgumentParser()
parser.add_argument("--no-xla", dest="jit", action="store_false")
parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
authors.add_arguments(parser)
args = parser.parse_args()

from timnet_keras.runs.run_config import ModelConfig, TrainingConfig  # noqa: E402
from timnet_keras.training.sequential import SequentialTrainer  # noqa: E402

trainer = SequentialTrainer(ModelConfig(frames=188, num_classes=7), TrainingConfig(batch_size=64, epoch=1, precision=args.precision), 46,
                      "last", args.jit)
model = trainer.compiled_model()
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 188, 39), dtype=np.float32)
y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, 64)]
weights = np.ones(64, np.float32)  # the training loop's step: sample weights (zero on padding rows)
step = median_ms(lambda: model.train_on_batch(x, y, sample_weight=weights), repeats=20, warmup=3)
gemm = gemm_gflops()
achieved = STEP_GFLOP / (step / 1000)
import keras  # noqa: E402

print(f"train step (batch 64, 188x39, 7 classes, 8 blocks, {keras.backend.backend()}, XLA={args.jit}, {args.precision}): median {step:.1f} ms")
if authors.available(args):
    theirs = authors.step_ms(args)
    print(f"  the authors' graph, same run: median {theirs:.1f} ms -> ours is {theirs / step:.2f}x faster")
else:
    print(f"  authors' graph 420-515 ms (REFERENCE.md) -> speed-up {420 / step:.2f}x to {515 / step:.2f}x")
print(f"  {achieved:.0f} GFLOP/s achieved; same-run float32 GEMM {gemm:.0f} GFLOP/s; ratio {100 * achieved / gemm:.0f} %")
