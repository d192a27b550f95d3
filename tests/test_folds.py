"""Protocols: the authors' k-fold, stratified, and speaker-independent folds."""
import numpy as np
import pytest
from sklearn.model_selection import KFold

from timnet_keras.features.extract import demo_features
from timnet_keras.training.folds import ProtocolError, make_folds


@pytest.fixture(scope="module")
def demo():
    return demo_features(mean_signal_length=4096, n_utterances=48)


def test_kfold_is_the_authors_shuffled_kfold_over_the_sample_order(demo):
    expected = list(KFold(10, shuffle=True, random_state=46).split(np.zeros(48)))
    for (train, test), (e_train, e_test) in zip(make_folds(demo, "kfold", 10, 46), expected):
        np.testing.assert_array_equal(test, e_test)
        np.testing.assert_array_equal(train, e_train)


@pytest.mark.parametrize("protocol", ["kfold", "stratified", "speaker"])
def test_every_sample_is_tested_exactly_once(demo, protocol):
    tests = np.concatenate([test for _, test in make_folds(demo, protocol, 4, 1)])
    assert sorted(tests.tolist()) == list(range(48))


def test_speaker_protocol_never_shares_a_speaker_between_train_and_test(demo):
    folds = make_folds(demo, "speaker", 10, 46)
    speakers = np.array(demo.speakers)
    assert len(folds) == 6  # six synthetic speakers: leave-one-speaker-out
    for train, test in folds:
        assert not set(speakers[train]) & set(speakers[test])


def test_speaker_protocol_without_speakers_says_how_to_get_them(demo):
    from dataclasses import replace

    with pytest.raises(ProtocolError, match="--speaker_regex"):
        make_folds(replace(demo, speakers=("",) * 48), "speaker", 10, 46)
