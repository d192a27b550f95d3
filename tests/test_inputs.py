"""The checks at the door, over ranges of values (Hypothesis): what is refused, and what passes unchanged."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from timnet_keras.errors import InputError, TimnetError
from timnet_keras.inputs import audio_array, check_window, label_list

seconds = st.floats(0.01, 60, allow_nan=False)


@given(window=seconds, hop=seconds, level=st.one_of(st.none(), st.floats(-300, 300, allow_nan=False)))
def test_windows_are_refused_exactly_when_audio_would_go_unheard_or_the_level_is_impossible(window, hop, level):
    refused = hop > window or (level is not None and not -200 <= level <= 0)
    try:
        check_window(window, hop, level)
    except InputError:
        assert refused
    else:
        assert not refused


names = st.text(st.characters(blacklist_characters=",", blacklist_categories=("Cs",)), min_size=0, max_size=6)


@given(st.lists(names, min_size=1, max_size=5))
def test_a_label_list_passes_only_with_two_or_more_distinct_non_blank_names(parts):
    stripped = [p.strip() for p in parts]
    good = all(stripped) and len(set(stripped)) == len(stripped) >= 2
    try:
        assert label_list(",".join(parts)) == tuple(stripped)
    except InputError:
        assert not good
    else:
        assert good


@settings(max_examples=50)
@given(arrays(st.sampled_from([np.int8, np.int16, np.int32, np.uint8]), st.integers(1, 200)))
def test_integer_pcm_becomes_floats_in_minus_one_to_one(pcm):
    signal = audio_array(pcm, 16000)
    assert signal.dtype == np.float32 and signal.shape == pcm.shape and np.all(np.abs(signal) <= 1)


@pytest.mark.parametrize("rate", [0, -16000, float("nan"), float("inf"), True, "16000", None])
def test_a_rate_that_is_not_a_positive_number_is_refused(rate):
    with pytest.raises(InputError, match="sample_rate"):
        audio_array(np.zeros(100, np.float32), rate)


def test_every_error_of_the_package_is_a_timnet_error():
    import importlib
    import inspect
    import pkgutil

    import timnet_keras

    errors = []
    for module in pkgutil.walk_packages(timnet_keras.__path__, "timnet_keras."):
        loaded = importlib.import_module(module.name)
        errors += [obj for name, obj in vars(loaded).items() if inspect.isclass(obj) and issubclass(obj, Exception)
                   and obj.__module__ == loaded.__name__]
    assert len(errors) >= 10 and all(issubclass(error, TimnetError) for error in errors), errors
