"""Latency of one 4-s window through each exported format, and a 10-minute recording through --window 4 --hop 1.

The model is the authors' EMODB_46 fold 1; the window is one Emo-DB feature matrix (188 x 39, 4.35 s of
audio). Each format runs in this process with its own runtime: Keras (TensorFlow backend, predict_on_batch),
the SavedModel's `serve`, TensorFlow's TFLite interpreter, onnxruntime. The long recording is Emo-DB
utterances end to end (with 1-s gaps) up to 10 minutes; its figure is the whole `main.py --mode predict`
command, start-up included, with the ten-fold ensemble (the default).
"""
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from common import EMODB_46, EMODB_WAV, REPO, median_ms

if not (os.path.isdir(EMODB_WAV) and os.path.isdir(EMODB_46)):
    sys.exit("skipped: needs ../shared (Emo-DB and EMODB_46)")

import soundfile  # noqa: E402
import tensorflow as tf  # noqa: E402

from timnet_keras import TimnetClassifier  # noqa: E402

work = tempfile.mkdtemp()
classifier = TimnetClassifier.from_weights(EMODB_46, corpus="EMODB", fold=1)
wav_dir = os.path.join(EMODB_WAV, "wav")
x = classifier.preprocessor([os.path.join(wav_dir, "03a01Wa.wav")])
reference = np.asarray(classifier.predict_on_batch(x))
runners = {"keras (TensorFlow backend)": lambda: classifier.predict_on_batch(x)}

for fmt in ("saved_model", "tflite", "onnx"):
    start = time.perf_counter()
    manifest = classifier.export_bundle(os.path.join(work, fmt), fmt)
    print(f"export {fmt}: {time.perf_counter() - start:.1f} s")
    path = os.path.join(work, fmt, manifest.model_file)
    if fmt == "saved_model":
        served = tf.saved_model.load(path)
        runners["SavedModel (serve)"] = lambda: served.serve(x)
    elif fmt == "tflite":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_path=path, num_threads=os.cpu_count())
        interpreter.allocate_tensors()
        index_in, index_out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

        def tflite():
            interpreter.set_tensor(index_in, x)
            interpreter.invoke()
            return interpreter.get_tensor(index_out)

        runners["TFLite (TF interpreter)"] = tflite
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(path)
        feed = {session.get_inputs()[0].name: x}
        runners["ONNX (onnxruntime)"] = lambda: session.run(None, feed)[0]

for runtime, run in runners.items():
    difference = float(np.abs(np.asarray(run()) - reference).max())
    print(f"one 4.35-s window, {runtime}: median {median_ms(run, repeats=50, warmup=5):.2f} ms (max |p - keras| {difference:.1e})")

signals, total, rate = [], 0, classifier.preprocessor.sample_rate
for name in sorted(os.listdir(wav_dir)):
    signal = classifier.preprocessor.load(os.path.join(wav_dir, name))
    signals += [signal, np.zeros(rate, np.float32)]
    total += len(signal) + rate
    if total >= 600 * rate:
        break
long_wav = os.path.join(work, "ten_minutes.wav")
soundfile.write(long_wav, np.concatenate(signals)[: 600 * rate], rate)
command = [sys.executable, os.path.join(REPO, "Code", "main.py"), "--mode", "predict", "--data", "EMODB", "--test_path",
           EMODB_46, "--wav", long_wav, "--window", "4", "--hop", "1", "--output", os.path.join(work, "t.csv")]
start = time.perf_counter()
subprocess.run(command, check=True, capture_output=True)
seconds = time.perf_counter() - start
rows = sum(1 for _ in open(os.path.join(work, "t.csv"))) - 1
print(f"10-minute recording, --window 4 --hop 1, ten-fold ensemble, whole command: {seconds:.1f} s for {rows} windows "
      f"({600 / seconds:.0f}x real time)")
