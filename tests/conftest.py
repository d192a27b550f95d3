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
    from timnet_keras.extract import corpus_features

    return corpus_features("EMODB", os.path.dirname(EMODB_WAV), log=lambda *_: None)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
