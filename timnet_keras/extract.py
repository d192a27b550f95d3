"""Corpus -> `MFCC/<DATA>.npz`: read, extract in parallel, cache atomically."""
import os

import numpy as np

from .cache import FeatureSet, cache_path, one_hot, save_feature_cache
from .config import CORPORA, SAMPLE_RATE, canonical_name
from .corpora import read_corpus
from .features import AUTO_LENGTH_PERCENTILE, auto_signal_length, extract_features, feature_settings, fit_length, mfcc_matrix


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
        mean_signal_length = default_signal_length(name) or "auto"  # own corpora: auto
    if mean_signal_length == "auto":
        mean_signal_length = auto_signal_length(paths, workers, skip_bad)
        log(f"mean_signal_length auto: {mean_signal_length} samples ({mean_signal_length / SAMPLE_RATE:.2f} s, "
            f"the {AUTO_LENGTH_PERCENTILE}th percentile of the durations)")
    x, kept, errors = extract_features(paths, int(mean_signal_length), workers, skip_bad)
    for error in errors:
        log(f"skipped: {error}")
    utterances = [utterances[i] for i in kept]
    rank = {label: i for i, label in enumerate(labels)}
    settings = feature_settings(mean_signal_length)
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
    """The built-in DEMO corpus through the same length rule and MFCC as real audio."""
    from .demo import DEMO_LABELS, synthesize_demo_corpus

    length = int(mean_signal_length or CORPORA["DEMO"].mean_signal_length)
    items = synthesize_demo_corpus(n_utterances, seed)
    x = np.stack([mfcc_matrix(fit_length(signal, length)) for _, _, _, signal in items])
    rank = {label: i for i, label in enumerate(DEMO_LABELS)}
    settings = feature_settings(length)
    settings.update(data_name="DEMO", synthetic_seed=seed, utterances=n_utterances)
    return FeatureSet(
        x=x,
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
