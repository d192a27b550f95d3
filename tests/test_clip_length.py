"""benchmarks/clip_length.py's centre clip: what a clip of L seconds of each test recording is (#36).

The README's clip-length table and its recommended `--window` rest on this cut; these cases pin it
(shorter, equal, longer, odd and even excess) so it cannot change silently. No model, no audio.
"""
import importlib.util
import os

import numpy as np
import pytest

from conftest import REPO


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("clip_length_benchmark", os.path.join(REPO, "benchmarks", "clip_length.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


clip_length = _load_benchmark()
centre_clip = clip_length.centre_clip


def test_a_recording_shorter_than_the_clip_is_kept_whole_and_not_padded():
    signal = np.arange(1, 6, dtype=np.float32)
    out = centre_clip(signal, 8)
    assert out.tolist() == [1, 2, 3, 4, 5]  # the preprocessor pads it to the model's length afterwards, not the clip


def test_a_recording_of_exactly_the_clip_length_is_unchanged():
    signal = np.arange(6)
    assert centre_clip(signal, 6).tolist() == signal.tolist()


@pytest.mark.parametrize("n, size, expected", [
    (10, 4, [3, 4, 5, 6]),     # even excess 6: 3 cut at each end
    (11, 4, [3, 4, 5, 6]),     # odd excess 7: 3 at the start, 4 at the end
    (9, 4, [2, 3, 4, 5]),      # odd excess 5: 2 at the start, 3 at the end
    (7, 3, [2, 3, 4]),         # odd length, odd clip
    (8, 1, [3]),
])
def test_a_longer_recording_gives_its_centre(n, size, expected):
    assert centre_clip(np.arange(n), size).tolist() == expected


def test_the_clip_cuts_as_the_preprocessor_crops():
    from timnet_keras.features.preprocessor import fit_length

    rng = np.random.default_rng(0)
    for n in (96001, 96000, 123457, 200000):
        signal = rng.standard_normal(n).astype(np.float32)
        for size in (22050, 22051, 96000):
            clipped = centre_clip(signal, size)
            assert len(clipped) == min(n, size)
            if n >= size:
                np.testing.assert_array_equal(clipped, fit_length(signal, size))
            start = (n - len(clipped)) // 2
            np.testing.assert_array_equal(clipped, signal[start : start + len(clipped)])


def test_clip_sizes_round_seconds_as_the_window_does():
    assert clip_length.clip_samples(1, 22050) == 22050
    assert clip_length.clip_samples(2.5, 22050) == 55125
    assert clip_length.clip_samples(1 / 3, 22050) == 7350


def test_a_clip_of_no_samples_is_refused():
    with pytest.raises(ValueError):
        centre_clip(np.arange(5), 0)


def test_the_recommendation_is_the_shortest_length_within_one_point():
    rows = [{"length": 1.0, "war": 70.0}, {"length": 2.0, "war": 91.9}, {"length": 3.0, "war": 92.9},
            {"length": 4.0, "war": 94.0}, {"length": None, "war": 93.0}]
    row, sentence = clip_length.recommendation(rows)
    assert row["length"] == 3.0 and "--window 3" in sentence  # 2 s scores 91.9, 1.1 points below: not within
    rows[1]["war"] = 92.0  # exactly 1 point below: within
    assert clip_length.recommendation(rows)[0]["length"] == 2.0
    row, sentence = clip_length.recommendation([{"length": 1.0, "war": 50.0}, {"length": None, "war": 93.0}])
    assert row is None and "no length tested" in sentence
