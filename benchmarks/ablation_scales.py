"""Table 3's variants on a corpus: activation scale per stage at initialisation, and the first epochs' losses.

    python benchmarks/ablation_scales.py [--data EMODB] [--epochs 3] [--batch 64]

Reads MFCC/<DATA>.npz (extracts Emo-DB from ../shared when missing). Each
variant is built with the corpus' seed and trained on the first fold of the
authors' 10-fold split with their settings; the loss is the epoch mean of the
training loss. Prints Markdown tables for REPRODUCTION.md.
"""
import argparse
import os
import sys

import numpy as np
from common import EMODB_WAV, REPO

parser = argparse.ArgumentParser()
parser.add_argument("--data", default="EMODB")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--batch", type=int, default=64)
parser.add_argument("--mfcc_path", default=os.path.join(REPO, "MFCC"))
parser.add_argument("--variants", default="timnet,tcn,no_bd,no_ms,no_df")
args = parser.parse_args()

from timnet_keras.model.backbone import VARIANTS  # noqa: E402
from timnet_keras.features.cache import cache_path, load_features  # noqa: E402
from timnet_keras.config import default_seed  # noqa: E402
from timnet_keras.runs.diagnostics import activation_scales  # noqa: E402
from timnet_keras.training.folds import make_folds  # noqa: E402
from timnet_keras.runs.run_config import ModelConfig, TrainingConfig  # noqa: E402
from timnet_keras.training.plan import fresh_weights  # noqa: E402
from timnet_keras.training.sequential import SequentialTrainer  # noqa: E402
from timnet_keras.model.classifier import TimnetClassifier  # noqa: E402

if not os.path.isfile(cache_path(args.mfcc_path, args.data)):
    if args.data != "EMODB" or not os.path.isdir(EMODB_WAV):
        sys.exit(f"skipped: no {cache_path(args.mfcc_path, args.data)}")
    from timnet_keras.features.extract import extract_to_cache

    extract_to_cache("EMODB", args.mfcc_path, wav_dir=EMODB_WAV)
features = load_features(args.mfcc_path, args.data)
seed = default_seed(args.data)
train, _ = make_folds(features, "kfold", 10, seed)[0]
batch = features.x[train[: args.batch]]
variants = args.variants.split(",")
rows, losses = {}, {}
for variant in variants:
    assert variant in VARIANTS, variant
    config = ModelConfig(frames=features.x.shape[1], num_classes=len(features.labels), variant=variant)
    classifier = TimnetClassifier.from_model_config(config)
    classifier.set_weights(fresh_weights(config, seed + 1))
    rows[variant] = activation_scales(classifier, batch)
    trainer = SequentialTrainer(config, TrainingConfig(epoch=args.epochs), seed)
    history, _ = trainer.train_fold(1, features.x[train], features.y[train])
    losses[variant] = history["loss"]

stages = []
for variant in variants:
    stages += [stage for stage, _ in rows[variant] if stage not in stages]
stages = [s for s in stages if s not in ("fusion", "logits")] + ["fusion", "logits"]
print(f"Activation scale (root mean square) at initialisation, in training mode (batch statistics, as the first step "
      f"sees it), {args.data}, {args.batch} training samples of fold 1, seed {seed + 1}:\n")
print("| stage | " + " | ".join(variants) + " |")
print("| --- |" + " --- |" * len(variants))
for stage in stages:
    cells = [next((f"{v:.3g}" for s, v in rows[variant] if s == stage), "—") for variant in variants]
    print(f"| {stage} | " + " | ".join(cells) + " |")
print(f"\nMean training loss per epoch (fold 1 of 10, batch 64, lr 1e-3; ln {len(features.labels)} = "
      f"{np.log(len(features.labels)):.2f} is a uniform guess):\n")
print("| variant | " + " | ".join(f"epoch {e + 1}" for e in range(args.epochs)) + " |")
print("| --- |" + " --- |" * args.epochs)
for variant in variants:
    print(f"| {variant} | " + " | ".join(f"{v:.2f}" for v in losses[variant]) + " |")
