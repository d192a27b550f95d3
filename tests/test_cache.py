"""The feature cache: loads without pickle, never half-written, says what to do when missing."""
import os

import numpy as np
import pytest

from timnet_keras.features.cache import CacheError, FeatureSet, load_feature_cache, load_features, one_hot, save_feature_cache


def _features(n=6):
    return FeatureSet(np.ones((n, 5, 39), np.float32), one_hot([0, 1] * (n // 2), 2), ("a", "b"),
                      tuple(f"f{i}.wav" for i in range(n)), tuple("s1" for _ in range(n)), {"mean_signal_length": 2048})


def test_cache_round_trip_loads_without_pickle(tmp_path):
    path = str(tmp_path / "X.npz")
    save_feature_cache(path, _features())
    loaded = load_feature_cache(path)
    assert loaded.labels == ("a", "b") and loaded.paths[2] == "f2.wav" and loaded.settings["mean_signal_length"] == 2048
    np.testing.assert_array_equal(loaded.x, _features().x)
    np.testing.assert_array_equal(loaded.classes, [0, 1, 0, 1, 0, 1])


def test_an_interrupted_cache_write_leaves_nothing(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        save_feature_cache(str(tmp_path / "X.npz"), _features())
    assert os.listdir(tmp_path) == []


def test_the_authors_pickled_npy_needs_allow_pickle(tmp_path):
    np.save(tmp_path / "EMODB.npy", {"x": np.zeros((2, 3, 39)), "y": np.eye(7)[:2]}, allow_pickle=True)
    with pytest.raises(CacheError, match="--allow-pickle"):
        load_feature_cache(str(tmp_path / "EMODB.npz"))
    loaded = load_feature_cache(str(tmp_path / "EMODB.npz"), labels=("a", "b", "c", "d", "e", "f", "g"), allow_pickle=True)
    assert loaded.x.shape == (2, 3, 39) and loaded.labels[0] == "a"


def test_a_missing_cache_names_the_extract_command(tmp_path):
    with pytest.raises(CacheError, match="python Code/extract_feature.py --data_name EMODB --wav_dir PATH"):
        load_features(str(tmp_path), "EMODB")


from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


NAME_CHARACTERS = st.characters(blacklist_characters="\x00")  # refused: see the test below


@settings(max_examples=25, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 3)),
              elements=st.floats(-1e6, 1e6, width=32)),
       st.lists(st.text(NAME_CHARACTERS, min_size=1, max_size=8), min_size=2, max_size=3, unique=True),
       st.text(NAME_CHARACTERS, max_size=12))
def test_any_finite_cache_comes_back_exactly(tmp_path_factory, x, labels, name):
    n = len(x)
    features = FeatureSet(x, one_hot([i % len(labels) for i in range(n)], len(labels)), tuple(labels),
                          tuple(f"{name}{i}.wav" for i in range(n)), tuple(name for _ in range(n)), {"note": name})
    path = str(tmp_path_factory.mktemp("cache") / "X.npz")
    save_feature_cache(path, features)
    loaded = load_feature_cache(path)
    np.testing.assert_array_equal(loaded.x, x)
    assert (loaded.labels, loaded.paths, loaded.speakers, loaded.settings) == (features.labels, features.paths, features.speakers, features.settings)


def test_a_name_with_a_nul_character_is_refused_not_silently_changed(tmp_path):
    features = FeatureSet(np.zeros((1, 2, 3), np.float32), one_hot([0], 2), ("a", "b"), ("x.wav",), ("sp\x00",), {})
    with pytest.raises(CacheError, match="NUL character"):
        save_feature_cache(str(tmp_path / "X.npz"), features)
    assert not os.listdir(tmp_path)
