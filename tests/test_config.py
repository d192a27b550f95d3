"""The corpus table: names in any case and alias, defaults for own corpora."""
import pytest

from timnet_keras.config import CORPORA, DEFAULT_SEED, canonical_name, corpus_spec, default_num_blocks, default_seed


def test_names_match_in_any_case_and_through_aliases():
    assert canonical_name("emodb") == "EMODB" and canonical_name("RAVDESS") == "RAVDE" and canonical_name("Mine") is None


def test_own_corpora_get_the_default_seed_and_depth_known_ones_their_own():
    assert default_seed("Mine") == DEFAULT_SEED and default_num_blocks("Mine") == 8
    assert default_seed("casia") == CORPORA["CASIA"].seed and default_num_blocks("iemocap") == CORPORA["IEMOCAP"].num_blocks


def test_demo_has_the_fewest_blocks_whose_receptive_field_covers_its_frames():
    from timnet_keras.features.preprocessor import frames_for
    from timnet_keras.model.backbone import receptive_field

    frames, blocks = frames_for(CORPORA["DEMO"].mean_signal_length), CORPORA["DEMO"].num_blocks
    assert receptive_field(blocks - 1) < frames <= receptive_field(blocks)


def test_an_unknown_corpus_lists_the_known_ones():
    with pytest.raises(KeyError, match="EMODB"):
        corpus_spec("NOPE")


def test_every_corpus_names_each_emotion_once():
    for spec in CORPORA.values():
        assert len(set(spec.labels)) == len(spec.labels) >= 2
