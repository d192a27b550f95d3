"""--mode test for the 10 EMODB_46 folds (start-up included) and predict latency on one 4-s file."""
import os
import subprocess
import sys
import time

import numpy as np
from common import EMODB_46, EMODB_WAV, REPO, emodb_workspace, median_ms

if not (os.path.isdir(EMODB_WAV) and os.path.isdir(EMODB_46)):
    sys.exit("skipped: needs ../shared (Emo-DB and EMODB_46)")
main = [sys.executable, os.path.join(REPO, "Code", "main.py")]
dirs = emodb_workspace()

start = time.perf_counter()
out = subprocess.run(main + ["--mode", "test", "--data", "EMODB", "--test_path", EMODB_46, *dirs], check=True, capture_output=True, text=True).stdout
print(f"--mode test, 10 folds, start-up included: {time.perf_counter() - start:.1f} s (authors: 104 s)")
print("  " + [l for l in out.splitlines() if l.startswith("pooled")][0])

from timnet_keras import TimnetClassifier  # noqa: E402

wav = sorted(p for p in os.listdir(os.path.join(EMODB_WAV, "wav")))
durations = {p: os.path.getsize(os.path.join(EMODB_WAV, "wav", p)) for p in wav}
four_second = min(durations, key=lambda p: abs(durations[p] - 44 - 4 * 32000))  # 16-bit 16 kHz: 32 kB/s
path = os.path.join(EMODB_WAV, "wav", four_second)
classifier = TimnetClassifier.from_weights(EMODB_46, corpus="EMODB", fold=1)
predict = lambda: np.asarray(classifier.predict_on_batch(classifier.preprocessor([path])))
print(f"predict one {durations[four_second] / 32000:.1f}-s file with a loaded model (features + forward): median {median_ms(predict):.1f} ms")
