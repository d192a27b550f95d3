"""Feature extraction of the 535 Emo-DB files: wall time and the features' fingerprint."""
import time

from common import EMODB_WAV
import os
import sys

if not os.path.isdir(EMODB_WAV):
    sys.exit(f"skipped: no Emo-DB at {EMODB_WAV}")
from timnet_keras.extract import corpus_features  # noqa: E402

start = time.perf_counter()
features = corpus_features("EMODB", EMODB_WAV, log=lambda *_: None)
wall = time.perf_counter() - start
print(f"extract 535 Emo-DB files ({os.cpu_count()} workers): {wall:.1f} s wall (authors: 44 s -> {44 / wall:.1f}x)")
print(f"  x {features.x.shape}, mean {features.x.mean():.4f}, std {features.x.std():.4f} (reference -8.0481 / 68.0865)")
