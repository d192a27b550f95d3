"""Accuracy against clip length (#36): how many seconds of speech the fold models need, and the `--window` it recommends.

Each fold model scores its own test fold, the folds rebuilt exactly as `--mode test` rebuilds
them (the run's protocol, split and seed over the corpus in the authors' order, read by the
package's own corpus reader). For each length L, every test recording is cut to its centre L
seconds (the whole recording when it is shorter), as a user's clip of L seconds would be, and
goes through the package's preprocessing unchanged: centre padded (or cropped) to the model's
`mean_signal_length` (Emo-DB: 96 000 samples at 22 050 Hz, 4.35 s), MFCCs, the run's
normalisation (`normalise.fold_views`, as test mode applies it). The "full recording" row is
the pipeline of the paper's figures (each recording centre padded or cropped to the model's
length), which is `--mode test`; on the authors' EMODB_46 it must give 93.83 WAR / 93.27 UAR
pooled, and the script checks it (exit status 1 when it does not).

Each recording is read once (librosa's default load, resampled to 22 050 Hz); clips are cut
from that signal in memory, as `--mode predict --window` cuts its windows, and each fold's
clips of every length go through its model in one batch.

    nice -n 10 python benchmarks/clip_length.py --test_path ../shared/pretrained/EMODB_46 --data EMODB \\
        --wav_dir ../shared/corpora/EMODB/wav [--lengths 1,2,3,4,5] [--output clip_length.md]

Printed: a markdown table (length, pooled WAR and UAR, fold mean with its 95 % Student-t
interval over the folds, the share of test recordings shorter than L) and the recommendation:
the shortest length tested whose pooled WAR is within 1 point of the full recording's, the
`--window` for `--mode predict` on long recordings. `--output x.csv` writes the rows as CSV,
any other name as the same markdown. Lengths above the model's length are cropped again to it,
so they approach the full-recording row.

The authors' weights (and any best-test run) chose each fold's epoch on that fold's test
recordings: the trend with length is the finding, the level is optimistic; the output says so.
"""
import argparse
import csv
import io
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_LENGTHS = (1.0, 2.0, 3.0, 4.0, 5.0)
TOLERANCE = 1.0  # points of pooled WAR below the full recording's that a recommended length may lose
# Known pooled (WAR, UAR) of the full-recording pipeline: the authors' released weights (REFERENCE.md).
KNOWN_FIGURES = {("EMODB", 46): (93.83, 93.27)}
FULL = "full recording"


def centre_clip(signal, n_samples):
    """The centre `n_samples` of `signal`, or the whole signal when it is not longer (never padded).

    When the excess is odd, the extra sample is cut at the end (the start is `(n - n_samples) // 2`,
    the rule `preprocessor.fit_length` crops by).

    Example:
        >>> centre_clip(np.arange(7), 4).tolist(), centre_clip(np.arange(3), 4).tolist()
        ([1, 2, 3, 4], [0, 1, 2])
    """
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ValueError(f"a clip of {n_samples} samples")
    n = len(signal)
    if n <= n_samples:
        return signal
    start = (n - n_samples) // 2
    return signal[start : start + n_samples]


def clip_samples(seconds, sample_rate):
    """Samples in a clip of `seconds` (rounded, as `timeline.window_bounds` sizes a `--window`)."""
    return int(round(seconds * sample_rate))


def parse_lengths(text):
    """'1,2,3' -> (1.0, 2.0, 3.0): positive seconds, sorted, each once."""
    try:
        lengths = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lengths {text!r}: comma-separated seconds, e.g. 1,2,3,4,5") from None
    if not lengths or lengths[0] <= 0:
        raise argparse.ArgumentTypeError(f"--lengths {text!r}: give one or more positive lengths in seconds")
    return tuple(lengths)


def seconds_label(seconds):
    return f"{seconds:g} s"


def caveat(run_config):
    """The line every figure of this run carries: how its epochs were chosen."""
    if run_config.source:
        return ("authors' weights, epochs selected on the test folds (test-selected): the trend with length is the "
                "finding, the level is optimistic")
    if run_config.test_selected:
        return ("epochs selected on the test folds (test-selected): the trend with length is the finding, "
                "the level is optimistic")
    return f"{run_config.selection_note}; each fold model on its own test fold"


def recommendation(rows, tolerance=TOLERANCE):
    """The shortest length row whose pooled WAR is within `tolerance` points of the full recording's, and the sentence.

    Example:
        >>> rows = [{"length": 1.0, "war": 60.0}, {"length": 2.0, "war": 92.5}, {"length": None, "war": 93.0}]
        >>> recommendation(rows)[0]["length"]
        2.0
    """
    full = next(r for r in rows if r["length"] is None)
    for row in sorted((r for r in rows if r["length"] is not None), key=lambda r: r["length"]):
        if row["war"] >= full["war"] - tolerance:
            return row, (f"recommended --window {row['length']:g}: the shortest length tested whose pooled WAR "
                         f"({row['war']:.2f} %) is within {tolerance:g} point of the full recording's "
                         f"({full['war']:.2f} %; {_gap(full['war'] - row['war'])})")
    best = max((r for r in rows if r["length"] is not None), key=lambda r: r["war"], default=None)
    tail = f"; the best, {seconds_label(best['length'])}, scores {best['war']:.2f} %" if best else ""
    return None, (f"no length tested comes within {tolerance:g} point of the full recording's pooled WAR "
                  f"({full['war']:.2f} %){tail}: keep the model's own length (no --window), or test longer ones")


def _gap(points):
    return f"{points:.2f} points below it" if points >= 0 else f"{-points:.2f} points above it"


def scores(y_true, y_pred, fold_of):
    """The row's figures: pooled WAR and UAR, per-fold WAR and UAR, their means and 95 % intervals."""
    from timnet_keras.training.evaluation import confidence_interval, uar, war

    folds = sorted(set(fold_of.tolist()))
    fold_war = [war(y_true[fold_of == k], y_pred[fold_of == k]) for k in folds]
    fold_uar = [uar(y_true[fold_of == k], y_pred[fold_of == k]) for k in folds]
    return {"war": war(y_true, y_pred), "uar": uar(y_true, y_pred),
            "fold_war": fold_war, "fold_uar": fold_uar,
            "war_mean": float(np.mean(fold_war)), "war_interval": confidence_interval(fold_war),
            "uar_mean": float(np.mean(fold_uar)), "uar_interval": confidence_interval(fold_uar)}


def _interval(mean, interval):
    return f"{mean:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else f"{mean:.2f}"


def markdown_table(rows, model_seconds):
    lines = ["| length | WAR (pooled) | UAR (pooled) | WAR, fold mean [95 % interval] | UAR, fold mean [95 % interval] "
             "| test recordings shorter than L |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        length = seconds_label(r["length"]) if r["length"] is not None else f"{FULL} (centre {model_seconds:.2f} s)"
        shorter = f"{100 * r['shorter']:.1f} %" if r["length"] is not None else "n/a"
        lines.append(f"| {length} | {r['war']:.2f} | {r['uar']:.2f} | {_interval(r['war_mean'], r['war_interval'])} | "
                     f"{_interval(r['uar_mean'], r['uar_interval'])} | {shorter} |")
    return "\n".join(lines)


def csv_text(rows, label):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["length_s", "war_pooled", "uar_pooled", "war_fold_mean", "war_ci_low", "war_ci_high",
                     "uar_fold_mean", "uar_ci_low", "uar_ci_high", "shorter_fraction", "note"])
    for r in rows:
        wi, ui = r["war_interval"] or ("", ""), r["uar_interval"] or ("", "")
        writer.writerow([FULL if r["length"] is None else f"{r['length']:g}", f"{r['war']:.2f}", f"{r['uar']:.2f}",
                         f"{r['war_mean']:.2f}", *(f"{v:.2f}" if v != "" else "" for v in wi), f"{r['uar_mean']:.2f}",
                         *(f"{v:.2f}" if v != "" else "" for v in ui),
                         "" if r["length"] is None else f"{r['shorter']:.4f}", label])
    return out.getvalue()


def load_signals(preprocessor, paths, log=print):
    """Every recording once, at the preprocessor's rate (librosa's default load)."""
    signals, start = [], time.time()
    for k, path in enumerate(paths, start=1):
        signals.append(preprocessor.load(path))
        if k % 100 == 0 or k == len(paths):
            log(f"read {k}/{len(paths)} recordings ({time.time() - start:.0f} s)")
    return signals


def clip_features(preprocessor, signals, seconds):
    """Raw MFCCs (n, frames, n_mfcc) of each signal's centre `seconds` (None: the whole signal), then the
    preprocessor's own centre pad/crop to the model's length."""
    if seconds is None:
        return np.stack([preprocessor.signal_features(s) for s in signals])
    size = clip_samples(seconds, preprocessor.sample_rate)
    return np.stack([preprocessor.signal_features(centre_clip(s, size)) for s in signals])


def reference_check(run_config, test_path, full, n_folds):
    """(passed, sentence): the full-recording row against a known figure (authors' weights) or the run's fold records."""
    from timnet_keras.runs import store as run_store

    known = KNOWN_FIGURES.get((run_config.data, run_config.seed)) if run_config.source else None
    got = (round(full["war"], 2), round(full["uar"], 2))
    if known:
        ok = got == known
        return ok, (f"check {'passed' if ok else 'FAILED'}: the full-recording row gives {got[0]:.2f} WAR / {got[1]:.2f} UAR "
                    f"pooled; the known figure of these weights is {known[0]:.2f} / {known[1]:.2f}")
    records = [run_store.fold_record_path(test_path, k) for k in range(1, n_folds + 1)]
    if run_store.is_run_dir(test_path) and all(os.path.isfile(p) for p in records):
        from timnet_keras.training.evaluation import war

        stored = [run_store.read_fold_record(test_path, k) for k in range(1, n_folds + 1)]
        y = np.concatenate([r.y_true for r in stored])
        p = np.concatenate([np.argmax(r.probabilities, axis=1) for r in stored])
        recorded = war(y, p)
        ok = abs(recorded - full["war"]) < 0.5
        return ok, (f"check {'passed' if ok else 'FAILED'}: the full-recording row gives {full['war']:.2f} WAR pooled; "
                    f"the run's fold records give {recorded:.2f}")
    return True, "no known figure or fold records to check the full-recording row against"


def measure(test_path, wav_dir, lengths=DEFAULT_LENGTHS, data_name=None, seed=None, speaker_regex=None, log=print):
    """(run_config, rows, info): one row per length and the full-recording row (length None) last."""
    import dataclasses

    from timnet_keras.errors import RunError
    from timnet_keras.features.cache import FeatureSet, one_hot
    from timnet_keras.features.corpora import read_corpus
    from timnet_keras.features.normalise import fold_views
    from timnet_keras.features.preprocessor import MfccPreprocessor
    from timnet_keras.model.checkpoints import load_legacy_weights
    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.runs import store as run_store
    from timnet_keras.training.folds import make_folds

    run_config, weight_files = run_store.read_saved_run(test_path, corpus=data_name, seed=seed)
    if data_name:
        run_store.check_corpus(test_path, run_config, data_name)
    labels, utterances = read_corpus(run_config.data, wav_dir, labels=run_config.labels or None,
                                     speaker_regex=speaker_regex)
    if run_config.n_samples is not None and run_config.n_samples != len(utterances):
        raise RunError(f"{test_path} was trained on {run_config.n_samples} recordings of {run_config.data}; "
                       f"{wav_dir} holds {len(utterances)}")
    preprocessor = MfccPreprocessor.from_settings(run_config.features, run_config.normalise)
    if preprocessor.frames != run_config.model.frames:
        raise RunError(f"{test_path}: its features are {preprocessor.frames} frames, its model {run_config.model.frames}")
    rank = {label: i for i, label in enumerate(labels)}
    settings = preprocessor.settings()
    base = FeatureSet(x=np.zeros((len(utterances), 1, 1), np.float32),
                      y=one_hot([rank[u.label] for u in utterances], len(labels)), labels=tuple(labels),
                      paths=tuple(u.path for u in utterances), speakers=tuple(u.speaker for u in utterances),
                      settings=settings)
    folds = make_folds(base, run_config.protocol, run_config.split_fold, run_config.seed)
    if len(folds) != len(weight_files):
        raise RunError(f"{test_path} holds {len(weight_files)} fold weights but the protocol gives {len(folds)} folds")
    signals = load_signals(preprocessor, base.paths, log=log)
    durations = np.array([len(s) / preprocessor.sample_rate for s in signals])
    variants = list(lengths) + [None]
    views = {}
    for seconds in variants:
        start = time.time()
        features = dataclasses.replace(base, x=clip_features(preprocessor, signals, seconds))
        views[seconds] = fold_views(features, run_config.normalise, folds)  # normalised as --mode test does
        log(f"features of {FULL if seconds is None else seconds_label(seconds)} clips ({time.time() - start:.0f} s)")
    classifier = TimnetClassifier.from_model_config(run_config.model)
    y_true, fold_of, predicted = [], [], {seconds: [] for seconds in variants}
    for k, ((_, test_idx), path) in enumerate(zip(folds, weight_files), start=1):
        load_legacy_weights(classifier, path)
        batch = np.concatenate([views[seconds][k - 1].x[test_idx] for seconds in variants])
        probabilities = np.asarray(classifier.predict(batch, batch_size=64, verbose=0))
        for j, seconds in enumerate(variants):
            predicted[seconds].append(np.argmax(probabilities[j * len(test_idx) : (j + 1) * len(test_idx)], axis=1))
        y_true.append(base.classes[test_idx])
        fold_of.append(np.full(len(test_idx), k))
        log(f"fold {k}/{len(folds)}: {len(test_idx)} test recordings x {len(variants)} lengths")
    y_true, fold_of = np.concatenate(y_true), np.concatenate(fold_of)
    test_order = np.concatenate([test for _, test in folds])
    rows = []
    for seconds in variants:
        row = {"length": seconds, **scores(y_true, np.concatenate(predicted[seconds]), fold_of)}
        if seconds is not None:
            row["shorter"] = float(np.mean(durations[test_order] < clip_samples(seconds, preprocessor.sample_rate)
                                           / preprocessor.sample_rate))
        rows.append(row)
    info = {"model_seconds": preprocessor.mean_signal_length / preprocessor.sample_rate, "n": len(y_true),
            "n_folds": len(folds), "median_duration": float(np.median(durations)),
            "longer_than_model": float(np.mean(durations > preprocessor.mean_signal_length / preprocessor.sample_rate))}
    return run_config, rows, info


def report(run_config, rows, info, test_path, check):
    """The markdown the script prints (and writes for a non-CSV --output)."""
    _, sentence = recommendation(rows)
    import keras

    lines = [f"Clip length: {run_config.data}, {os.path.basename(os.path.normpath(test_path))} ({info['n_folds']} fold models, "
             f"each on its own test fold; {info['n']} test recordings pooled; seed {run_config.seed}, "
             f"{run_config.protocol} folds)",
             f"[{caveat(run_config)}]",
             f"model length {info['model_seconds']:.2f} s; recordings: median {info['median_duration']:.2f} s, "
             f"{100 * info['longer_than_model']:.1f} % longer than the model's length",
             f"measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({os.cpu_count()} cores), "
             f"Keras {keras.__version__} / {keras.backend.backend()}",
             "",
             markdown_table(rows, info["model_seconds"]),
             "",
             check,
             sentence]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--test_path", required=True, help="our run folder, or the authors' weights folder (with --data)")
    p.add_argument("--data", default=None, help="the corpus of an authors' weights folder (EMODB, CASIA, ...)")
    p.add_argument("--seed", type=int, default=None, help="an authors' folder's fold seed (default: the table's)")
    p.add_argument("--wav_dir", required=True, help="the corpus' audio, as extract_feature.py reads it")
    p.add_argument("--speaker_regex", default=None, help="an own corpus' speakers, as it was extracted with")
    p.add_argument("--lengths", type=parse_lengths, default=DEFAULT_LENGTHS,
                   help="clip lengths in seconds, comma-separated (default 1,2,3,4,5)")
    p.add_argument("--output", default=None, help="also write the table: .csv as CSV, any other name as markdown")
    args = p.parse_args(argv)

    def log(message):
        print(message, file=sys.stderr, flush=True)

    start = time.time()
    run_config, rows, info = measure(args.test_path, args.wav_dir, args.lengths, args.data, args.seed,
                                     args.speaker_regex, log=log)
    passed, check = reference_check(run_config, args.test_path, rows[-1], info["n_folds"])
    text = report(run_config, rows, info, args.test_path, check)
    print(text, end="")
    log(f"{time.time() - start:.0f} s in all")
    if args.output:
        body = csv_text(rows, caveat(run_config)) if args.output.lower().endswith(".csv") else text
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(body)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
