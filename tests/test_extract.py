"""Extraction of a corpus into a FeatureSet: parallel equals serial, bad files, DEMO."""
import numpy as np
import pytest
import soundfile

from timnet_keras.features.extract import corpus_features, demo_features, extract_features, extract_to_cache


def test_skip_bad_leaves_bad_files_out_and_reports_them(tmp_path, rng):
    good = str(tmp_path / "good.wav")
    soundfile.write(good, (0.1 * rng.normal(size=22050)).astype(np.float32), 22050, subtype="FLOAT")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"")
    with pytest.raises(Exception, match="--skip-bad"):
        extract_features([good, str(bad)], 22050, workers=1)
    x, kept, errors = extract_features([good, str(bad)], 22050, workers=1, skip_bad=True)
    assert kept == [0] and len(x) == 1 and "empty file" in errors[0]


def test_parallel_extraction_equals_serial(tmp_path, rng):
    paths = []
    for i in range(6):
        paths.append(str(tmp_path / f"{i}.wav"))
        soundfile.write(paths[-1], (0.1 * rng.normal(size=16000 + 1000 * i)).astype(np.float32), 16000, subtype="FLOAT")
    serial, _, _ = extract_features(paths, 30000, workers=1)
    parallel, _, _ = extract_features(paths, 30000, workers=2)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def test_own_corpus_with_auto_length_keeps_labels_speakers_and_paths(tmp_path, rng):
    lengths = {("calm", "spkA"): 22050, ("calm", "spkB"): 22050, ("joy", "spkA"): 44100, ("joy", "spkB"): 66150}
    for (label, speaker), n in lengths.items():
        path = tmp_path / "corpus" / label / f"{speaker}_1.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), (0.1 * rng.normal(size=n)).astype(np.float32), 22050, subtype="FLOAT")
    features = corpus_features("Mine", str(tmp_path / "corpus"), speaker_regex=r"^(spk\w)_", workers=1, log=lambda *_: None)
    assert features.labels == ("calm", "joy") and features.speakers == ("spkA", "spkB", "spkA", "spkB")
    assert features.paths[0] == "calm/spkA_1.wav"
    assert features.settings["mean_signal_length"] == int(np.percentile(list(lengths.values()), 75)) == 49612


def test_demo_is_seeded_and_cached_like_a_real_corpus(tmp_path):
    a, b = demo_features(8192, n_utterances=8), demo_features(8192, n_utterances=8)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, demo_features(8192, n_utterances=8, seed=1).x)
    path, features = extract_to_cache("demo", str(tmp_path))
    assert path.endswith("DEMO.npz") and features.x.shape == (200, 87, 39)
