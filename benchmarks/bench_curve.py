"""What the test-fold curve costs per epoch: one EMODB fold trained with and without it, in the same process.

    python benchmarks/bench_curve.py [--epochs 20] [--backend tensorflow|jax]

The curve is one forward pass of the test fold per epoch (`training.curve_point`). Both variants
train the same fold from the same seed after the same warm-up, alternating twice, so the ratio
comes from one machine state. Needs ../shared (Emo-DB).
"""
import argparse
import os
import sys
import time

from common import EMODB_WAV



def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--backend", default=None)
    args = parser.parse_args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    if not os.path.isdir(EMODB_WAV):
        sys.exit(f"skipped: no Emo-DB at {EMODB_WAV}")

    import keras
    import numpy as np

    from timnet_keras.features.extract import corpus_features
    from timnet_keras.training.folds import make_folds
    from timnet_keras.runs.run_config import ModelConfig, TrainingConfig
    from timnet_keras.training.sequential import SequentialTrainer

    features = corpus_features("EMODB", EMODB_WAV, log=lambda *_: None)
    train, test = make_folds(features, "kfold", 10, 46)[0]
    config = ModelConfig(frames=int(features.x.shape[1]), num_classes=len(features.labels))
    trainer = SequentialTrainer(config, TrainingConfig(epoch=args.epochs), seed=46)
    trainer.warm_up()
    seconds = {"without the curve": [], "with the curve": []}
    for _ in range(2):
        for name in seconds:
            extra = (features.x[test], features.y[test]) if name == "with the curve" else ()
            trainer.train_fold(1, features.x[train], features.y[train], *extra)  # first pass also compiles predict
            start = time.perf_counter()
            trainer.train_fold(1, features.x[train], features.y[train], *extra)
            seconds[name].append((time.perf_counter() - start) / args.epochs)
    base = min(seconds["without the curve"])
    print(f"EMODB fold 1 ({len(train)} train, {len(test)} test rows), {args.epochs} epochs, {keras.backend.backend()}:")
    for name, values in seconds.items():
        print(f"  {name:18s} {1000 * min(values):7.1f} ms per epoch  ({min(values) / base:.3f}x)")


if __name__ == "__main__":  # extraction starts worker processes
    main()
