"""Parity of the audio-input export (`--mode export --input audio`) with the package's own prediction.

For each recording: the exported model run on its samples (ONNX with onnxruntime, and the
SavedModel) against `TimnetClassifier.predict_files` (this package's MFCC, then Keras), and
the in-graph MFCC (`mfcc_graph.MfccGraph`) against the preprocessor's. Reports the largest
|difference| of the probabilities and of the MFCCs, and how many predicted labels agree.

    python benchmarks/audio_export_parity.py [--corpus DEMO|EMODB|both] [--every K]

DEMO: a calibrated DEMO run trained here (3 folds, 5 epochs, 2 blocks; each member has its
temperature), scored on 40 DEMO recordings of another seed (1-3 s, padded or cropped to 2 s).
EMODB: the authors' EMODB_46 weights, all ten folds averaged (the export's default), on every
K-th Emo-DB recording (default all 535), loaded as librosa.load(path, sr=22050) does
(`timnet_keras.features.mfcc.load`: 16 kHz resampled with soxr_hq), as the export's input asks.

Measured (2-core CPU shared with other jobs, TensorFlow 2.21, onnxruntime 1.32, tf2onnx 1.17; README):
    DEMO, 40 recordings, 3-fold calibrated ensemble: labels ONNX 40/40, SavedModel 40/40;
        max |p - predict_files| ONNX 1.2e-07, SavedModel 8.9e-08; max |MFCC difference| 8.9e-04
    EMODB, 535 recordings, 10-fold ensemble: labels ONNX 535/535, SavedModel 535/535;
        max |p - predict_files| ONNX 6.0e-07, SavedModel 6.0e-07; max |MFCC difference| 1.2e-03
    (the ten-fold ONNX file is 7.3 MB; its export took 6 minutes on the loaded machine)
"""
import argparse
import glob
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from benchmarks.common import EMODB_46, EMODB_WAV  # noqa: E402


def parity(name, classifier, paths, signals, work):
    """Exports `classifier` with audio input (ONNX, SavedModel) and compares both with predict_files."""
    import onnxruntime
    import tensorflow as tf

    from timnet_keras.model.mfcc_graph import MfccGraph

    start = time.perf_counter()
    expected = classifier.predict_files(paths)
    print(f"{name}: predict_files on {len(paths)} recordings: {time.perf_counter() - start:.1f} s")
    results = {}
    for fmt in ("onnx", "saved_model"):
        start = time.perf_counter()
        manifest = classifier.export_bundle(os.path.join(work, f"{name}_{fmt}"), fmt, input="audio")
        model = os.path.join(work, f"{name}_{fmt}", manifest.model_file)
        print(f"{name}: export {fmt} ({manifest.ensemble_size} members): {time.perf_counter() - start:.1f} s, "
              f"{_size(model) / 1e6:.2f} MB")
        if fmt == "onnx":
            session = onnxruntime.InferenceSession(model)
            run = lambda y: session.run(None, {"audio": y[None]})[0]  # noqa: E731
        else:
            served = tf.saved_model.load(model)
            run = lambda y: served.serve(y[None]).numpy()  # noqa: E731
        start = time.perf_counter()
        results[fmt] = np.concatenate([run(y) for y in signals])
        print(f"{name}: {fmt} on {len(signals)} recordings: {1000 * (time.perf_counter() - start) / len(signals):.1f} ms each")
    preprocessor = classifier.preprocessor
    layer = MfccGraph(preprocessor.mean_signal_length, preprocessor.sample_rate, preprocessor.n_mfcc)
    mfcc = max(float(np.abs(np.asarray(layer(y[None]))[0] - preprocessor.signal_features(y)).max()) for y in signals)
    agree = int((np.argmax(results["onnx"], 1) == np.argmax(expected, 1)).sum())
    agree_saved = int((np.argmax(results["saved_model"], 1) == np.argmax(expected, 1)).sum())
    print(f"{name}, {len(paths)} recordings, {classifier.ensemble_size}-member ensemble: labels ONNX {agree}/{len(paths)}, "
          f"SavedModel {agree_saved}/{len(paths)}; max |p - predict_files| ONNX "
          f"{np.abs(results['onnx'] - expected).max():.1e}, SavedModel {np.abs(results['saved_model'] - expected).max():.1e}; "
          f"max |MFCC difference| {mfcc:.1e}")


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def demo(work):
    from timnet_keras import cli
    from timnet_keras.features.cache import save_feature_cache
    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.features.demo import write_demo_wavs
    from timnet_keras.features.extract import demo_features
    from timnet_keras.features.mfcc import load

    save_feature_cache(os.path.join(work, "MFCC", "DEMO.npz"), demo_features(n_utterances=60))
    flags = ["--mfcc_path", os.path.join(work, "MFCC"), "--model_path", os.path.join(work, "Models"),
             "--result_path", os.path.join(work, "Results")]
    assert cli.main(["--mode", "train", "--data", "DEMO", "--calibrate", "--epoch", "5", "--dilation_size", "2",
                     "--split_fold", "3", "--batch_size", "8", "--no-xla", *flags]) == 0
    (run,) = glob.glob(os.path.join(work, "Models", "DEMO_*"))
    classifier = TimnetClassifier.from_run(run)
    print(f"DEMO run: temperatures {classifier.temperatures}")
    paths = write_demo_wavs(os.path.join(work, "demo_wavs"), n_utterances=40, seed=7)
    parity("DEMO", classifier, paths, [load(p) for p in paths], work)


def emodb(work, every):
    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.features.mfcc import load

    if not (os.path.isdir(EMODB_WAV) and os.path.isdir(EMODB_46)):
        print("EMODB: skipped, needs ../shared (Emo-DB and EMODB_46)")
        return
    paths = sorted(glob.glob(os.path.join(EMODB_WAV, "wav", "*.wav")))[::every]
    classifier = TimnetClassifier.from_weights(EMODB_46, corpus="EMODB")
    parity("EMODB", classifier, paths, [load(p) for p in paths], work)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", choices=("DEMO", "EMODB", "both"), default="both")
    p.add_argument("--every", type=int, default=1, help="EMODB: every K-th recording (default 1: all 535)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        if args.corpus in ("DEMO", "both"):
            demo(work)
        if args.corpus in ("EMODB", "both"):
            emodb(work, args.every)


if __name__ == "__main__":
    main()
