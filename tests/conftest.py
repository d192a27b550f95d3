"""Shared fixtures. Data-dependent tests read ../shared (or $TIMNET_SHARED) and skip without it."""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TIMNET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
EMODB_WAV = os.path.join(SHARED, "corpora", "EMODB", "wav")
EMODB_46 = os.path.join(SHARED, "pretrained", "EMODB_46")

needs_emodb = pytest.mark.skipif(not os.path.isdir(EMODB_WAV), reason=f"no Emo-DB audio at {EMODB_WAV}")
needs_emodb_46 = pytest.mark.skipif(not os.path.isdir(EMODB_46), reason=f"no authors' weights at {EMODB_46}")


@pytest.fixture(scope="session")
def emodb_features(tmp_path_factory):
    """The shared Emo-DB through our extractor, once per session."""
    if not os.path.isdir(EMODB_WAV):
        pytest.skip("no shared Emo-DB")
    from timnet_keras.features.extract import corpus_features

    return corpus_features("EMODB", os.path.dirname(EMODB_WAV), log=lambda *_: None)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def demo_mfcc(tmp_path_factory):
    """A folder holding a small DEMO cache (60 utterances), for grids that must run in seconds."""
    from timnet_keras.features.cache import cache_path, save_feature_cache
    from timnet_keras.features.extract import demo_features

    folder = tmp_path_factory.mktemp("mfcc")
    save_feature_cache(cache_path(str(folder), "DEMO"), demo_features(n_utterances=60))
    return str(folder)


# The cheapest way to train a tiny model for a few steps, per backend. TensorFlow: eagerly, or as a graph
# without XLA (tracing, and XLA's compile above all, cost more than a few steps save). JAX: jit-compiled
# (without jit JAX runs op by op, 2-5x slower than its compile here).
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
CHEAP_EAGER = KERAS_BACKEND == "tensorflow"
CHEAP_GRAPH = ["--no-xla"] if KERAS_BACKEND == "tensorflow" else []


def tiny_grid_flags(mfcc_path, registry, folds=2, epochs=1, eager=CHEAP_EAGER):
    """The tiny grid of the reproduction tests: DEMO, two cells (seeds 46, 47); eagerly on TensorFlow.

    A test whose grid runs in a TensorFlow child process from the JAX pass says eager=True.
    """
    return ["--table", "1", "--corpora", "DEMO", "--seeds", "2", "--split_fold", str(folds), "--epoch", str(epochs),
            *(["--run-eagerly"] if eager else []), "--mfcc_path", mfcc_path, "--registry", registry,
            "--report", os.path.join(registry, "R.md")]


def count_trainings(monkeypatch):
    """Patches SequentialTrainer.train_fold to note each training's name (one call, one training); returns the list."""
    from timnet_keras.training.sequential import SequentialTrainer

    calls, train_fold = [], SequentialTrainer.train_fold

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("desc"))
        return train_fold(self, *args, **kwargs)

    monkeypatch.setattr(SequentialTrainer, "train_fold", counted)
    return calls
