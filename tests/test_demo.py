"""The DEMO corpus: seeded, balanced, and its classes separable by what the synthesis varies."""
import numpy as np
import soundfile

from timnet_keras.features.demo import DEMO_LABELS, synthesize_demo_corpus, write_demo_wavs


def test_demo_is_seeded_balanced_and_in_the_authors_order():
    items = synthesize_demo_corpus(16, seed=3)
    again = synthesize_demo_corpus(16, seed=3)
    assert all(np.array_equal(a[3], b[3]) for a, b in zip(items, again))
    labels = [label for _, label, _, _ in items]
    assert labels == sorted(labels, key=DEMO_LABELS.index) and all(labels.count(l) == 4 for l in DEMO_LABELS)


def test_angry_is_louder_than_sad():
    items = synthesize_demo_corpus(40, seed=0)
    energy = lambda label: np.mean([np.sqrt(np.mean(s**2)) for _, l, _, s in items if l == label])
    assert energy("angry") > 2 * energy("sad")


def test_wavs_are_written_in_a_folder_per_class(tmp_path):
    paths = write_demo_wavs(str(tmp_path), n_utterances=4)
    assert sorted(p.split("/")[-2] for p in paths) == sorted(DEMO_LABELS)
    signal, rate = soundfile.read(paths[0])
    assert rate == 22050 and signal.ndim == 1
