"""Corpus -> `MFCC/<DATA>.npz`: read the corpus, run the preprocessor over it in parallel, cache.

Worker processes each run one BLAS thread (oversubscribed BLAS threads made
extraction five times slower) and warm the MFCC code up once (imports,
window and mel filters).
"""
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from timnet_keras.features.cache import FeatureSet, cache_path, one_hot, save_feature_cache
from timnet_keras.config import CORPORA, SAMPLE_RATE, canonical_name
from timnet_keras.features.corpora import read_corpus
from timnet_keras.features.preprocessor import N_FFT, BadAudioError, MfccPreprocessor

# `--mean_signal_length auto` takes this percentile of the corpus' durations:
# long enough to keep most of nearly every utterance, without padding
# every sample to the longest outlier.
AUTO_LENGTH_PERCENTILE = 75


def _init_worker():
    from threadpoolctl import threadpool_limits

    global _THREAD_LIMIT
    _THREAD_LIMIT = threadpool_limits(1)
    MfccPreprocessor(N_FFT).signal_features(np.zeros(N_FFT, np.float32))  # imports and constants, once


def _features_or_error(args):
    path, length = args
    try:
        return MfccPreprocessor(length).file_features(path), None
    except BadAudioError as error:
        return None, str(error)


def _duration_or_error(path):
    try:
        return len(MfccPreprocessor(N_FFT).load(path)), None
    except BadAudioError as error:
        return None, str(error)


def _map(function, items, workers, desc):
    from tqdm import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(items) or 1))
    progress = dict(total=len(items), desc=desc, unit="file", disable=None)
    if workers == 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # as in the workers, so features never depend on --workers
            return [function(item) for item in tqdm(items, **progress)]
    import multiprocessing
    import sys

    # fork is fastest, but not safe once a framework has started its threads.
    threaded = any(m in sys.modules for m in ("tensorflow", "jax"))
    context = multiprocessing.get_context("forkserver" if threaded else "fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        chunk = max(1, len(items) // (workers * 8))
        return list(tqdm(pool.map(function, items, chunksize=chunk), **progress))


def _collect(results, skip_bad):
    errors = [error for _, error in results if error]
    if errors and not skip_bad:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadAudioError(f"{errors[0]}{more}; fix or remove it, or pass --skip-bad")
    kept = [i for i, (value, _) in enumerate(results) if value is not None]
    return [results[i][0] for i in kept], kept, errors


def extract_features(paths, mean_signal_length, workers=None, skip_bad=False):
    """Features of many files in parallel, in the given order.

    Returns (x, kept_indices, errors). A bad file raises BadAudioError unless
    `skip_bad`, in which case it is left out and its message returned.
    """
    results = _map(_features_or_error, [(p, mean_signal_length) for p in paths], workers, "MFCC")
    return _collect(results, skip_bad)


def auto_signal_length(paths, workers=None, skip_bad=False, percentile=AUTO_LENGTH_PERCENTILE):
    """The `auto` mean_signal_length: a percentile of the corpus' durations in samples."""
    lengths, _, _ = _collect(_map(_duration_or_error, list(paths), workers, "durations"), skip_bad)
    return int(np.percentile(lengths, percentile))


def default_signal_length(data_name):
    key = canonical_name(data_name)
    return CORPORA[key].mean_signal_length if key else None


def corpus_features(data_name, wav_dir=None, mean_signal_length=None, workers=None, skip_bad=False,
                    labels=None, speaker_regex=None, log=print):
    """Features of a whole corpus in the authors' order, as a FeatureSet (not yet cached).

    `mean_signal_length` None means the table's default for known corpora and
    `auto` for own ones; "auto" picks a percentile of the durations.
    """
    key = canonical_name(data_name)
    name = key or data_name
    if key == "DEMO":
        return demo_features(mean_signal_length)
    labels, utterances = read_corpus(name, wav_dir, labels=labels, speaker_regex=speaker_regex)
    paths = [u.path for u in utterances]
    if mean_signal_length is None:
        mean_signal_length = default_signal_length(name) or "auto"
    if mean_signal_length == "auto":
        mean_signal_length = auto_signal_length(paths, workers, skip_bad)
        log(f"mean_signal_length auto: {mean_signal_length} samples ({mean_signal_length / SAMPLE_RATE:.2f} s, "
            f"the {AUTO_LENGTH_PERCENTILE}th percentile of the durations)")
    x, kept, errors = extract_features(paths, int(mean_signal_length), workers, skip_bad)
    for error in errors:
        log(f"skipped: {error}")
    utterances = [utterances[i] for i in kept]
    rank = {label: i for i, label in enumerate(labels)}
    settings = MfccPreprocessor(mean_signal_length).settings()
    settings.update(data_name=name, skipped=len(errors))
    return FeatureSet(
        x=np.stack(x),
        y=one_hot([rank[u.label] for u in utterances], len(labels)),
        labels=tuple(labels),
        paths=tuple(os.path.relpath(u.path, wav_dir) for u in utterances),
        speakers=tuple(u.speaker for u in utterances),
        settings=settings,
    )


def demo_features(mean_signal_length=None, n_utterances=200, seed=46):
    """The built-in DEMO corpus through the same preprocessor as real audio."""
    from timnet_keras.features.demo import DEMO_LABELS, synthesize_demo_corpus

    preprocessor = MfccPreprocessor(mean_signal_length or CORPORA["DEMO"].mean_signal_length)
    items = synthesize_demo_corpus(n_utterances, seed)
    rank = {label: i for i, label in enumerate(DEMO_LABELS)}
    settings = preprocessor.settings()
    settings.update(data_name="DEMO", synthetic_seed=seed, utterances=n_utterances)
    return FeatureSet(
        x=preprocessor.raw([signal for _, _, _, signal in items]),
        y=one_hot([rank[label] for _, label, _, _ in items], len(DEMO_LABELS)),
        labels=DEMO_LABELS,
        paths=tuple(path for path, _, _, _ in items),
        speakers=tuple(speaker for _, _, speaker, _ in items),
        settings=settings,
    )


def extract_to_cache(data_name, mfcc_dir, **options):
    """Extract a corpus and write its cache; returns (path, FeatureSet)."""
    features = corpus_features(data_name, **options)
    path = cache_path(mfcc_dir, features.settings["data_name"])
    save_feature_cache(path, features)
    return path, features


def cached_or_extracted(data_name, mfcc_dir, wav_dir=None, allow_pickle=False, log=print):
    """A corpus' cached features; extracted first from `wav_dir` (or generated, for DEMO) when the cache is missing.

    Without a cache and without audio, `load_features`' CacheError says which command makes one.
    """
    from timnet_keras.features.cache import load_features

    if not os.path.isfile(cache_path(mfcc_dir, data_name)) and (wav_dir or data_name == "DEMO"):
        path, _ = extract_to_cache(data_name, mfcc_dir, wav_dir=wav_dir)
        log(f"features extracted: {path}")
    spec = CORPORA.get(data_name)
    return load_features(mfcc_dir, data_name, allow_pickle, labels=spec.labels if spec else None)
