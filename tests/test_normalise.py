"""Feature normalisation (`--normalise`): `none` leaves the authors' features alone; `utterance` and `speaker`
statistics see only what they may; train, test, predict, export and the grid apply a run's option the same way."""
import dataclasses
import glob
import importlib.util
import json
import os
import warnings

import numpy as np
import pytest

from conftest import CHEAP_EAGER, CHEAP_GRAPH, tiny_grid_flags
from timnet_keras import cli
from timnet_keras.features.cache import CACHE_KEYS, cache_path, load_feature_cache, save_feature_cache
from timnet_keras.features.extract import demo_features
from timnet_keras.training.folds import make_folds
from timnet_keras.features.normalise import (Statistics, fold_view, fold_views, frame_statistics, normalised_features, real_frames,
                                    speaker_normalised, utterance_normalised, view_blocks)
from timnet_keras.features.preprocessor import MfccPreprocessor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--epoch", "2", "--dilation_size", "2", "--split_fold", "3", "--batch_size", "8", *CHEAP_GRAPH]


@pytest.fixture(scope="module")
def demo():
    """36 DEMO utterances of six speakers at the corpus' 2-s length: the 1-s ones are padded."""
    return demo_features(n_utterances=36)


def errors_of(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


# --- none: the authors' features, bit for bit ------------------------------------------------------

def test_none_leaves_the_cache_and_every_fold_bit_for_bit_the_authors_features(tmp_path):
    from timnet_keras.features.demo import synthesize_demo_corpus

    features = demo_features(n_utterances=12)
    recipe = MfccPreprocessor(44100)
    expected = np.stack([recipe.signal_features(recipe.resample(signal, 22050))
                         for *_, signal in synthesize_demo_corpus(12, 46)])
    assert features.x.tobytes() == expected.tobytes() and "normalise" not in features.settings
    path = cache_path(str(tmp_path), "DEMO")
    save_feature_cache(path, features)
    with np.load(path) as data:
        assert sorted(data.files) == sorted(CACHE_KEYS)  # nothing added to the cache
    loaded = load_feature_cache(path)
    assert loaded.x.tobytes() == expected.tobytes()
    folds = make_folds(loaded, "speaker", 10, 46)
    assert all(view is loaded for view in fold_views(loaded, "none", folds))  # the same object: the same bits
    assert recipe.normalised(loaded.x) is loaded.x and "normalise" not in recipe.get_config()
    x, _, offsets = view_blocks(fold_views(loaded, "none", folds))
    assert x is loaded.x and offsets == [0] * len(folds)


# --- utterance ------------------------------------------------------------------------------------------

def test_utterance_statistics_leave_the_padding_out_and_the_padding_stays_where_the_pipeline_puts_it():
    signal = (0.1 * np.random.default_rng(0).normal(size=20000)).astype(np.float32)
    # 8 more frames of zero padding (4 each side, whole hops): the same real frames, shifted by 4
    short, long_ = MfccPreprocessor(40960).raw([signal]), MfccPreprocessor(40960 + 8 * 1024).raw([signal])
    real_short, real_long = real_frames(short)[0], real_frames(long_)[0]
    assert real_short.sum() == real_long.sum() < short.shape[1]
    left = (40960 - 20000) // 2
    whole_window_in_padding = np.arange(short.shape[1]) * 512 + 1024 <= left
    assert not real_short[whole_window_in_padding].any()
    assert real_short[(np.arange(short.shape[1]) * 512 >= left + 1024) & (np.arange(short.shape[1]) * 512 < left + 20000 - 1024)].all()

    a, b = utterance_normalised(short)[0], utterance_normalised(long_)[0]
    np.testing.assert_allclose(a[real_short], b[real_long], atol=1e-5)  # however much padding: the same values
    np.testing.assert_allclose(a[real_short].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(a[real_short].std(axis=0), 1, atol=1e-4)
    # the padded frames: the pipeline's silent row, through the same per-coefficient map as the real frames
    stats = frame_statistics(short)
    padded = a[~real_short]
    assert (padded == padded[0]).all()
    np.testing.assert_allclose(padded[0], (short[0][~real_short][0] - stats.mean) / stats.std, rtol=1e-5)
    # statistics over every frame would measure the padding: they differ
    assert not np.allclose(short[0].mean(axis=0), stats.mean, atol=1.0)


def test_an_utterance_is_normalised_by_itself_alone(demo):
    view = normalised_features(demo, "utterance")
    other = demo.x.copy()
    other[1:] = other[1:][::-1] * 0.5 + 3.0  # every other recording changed
    relabelled = dataclasses.replace(demo, x=other, y=np.roll(demo.y, 1, axis=1))
    assert normalised_features(relabelled, "utterance").x[0].tobytes() == view.x[0].tobytes()
    assert view.settings["normalise"] == "utterance" and "normalise" not in demo.settings


# --- speaker --------------------------------------------------------------------------------------------

def test_a_held_out_speakers_statistics_are_its_own_recordings_features_never_its_labels(demo):
    speakers = np.asarray(demo.speakers)
    train, test = make_folds(demo, "speaker", 10, 46)[0]  # six speakers: leave one out
    assert len(set(speakers[test])) == 1 and not set(speakers[test]) & set(speakers[train])
    view = fold_view(demo, "speaker", train, test)
    np.testing.assert_array_equal(view.x[test], frame_statistics(demo.x[test]).apply(demo.x[test]))

    relabelled = dataclasses.replace(demo, y=np.roll(demo.y, 1, axis=1))  # the test speaker's (and all) labels
    assert fold_view(relabelled, "speaker", train, test).x.tobytes() == view.x.tobytes()

    trained_speaker = speakers[train[0]]
    rows = np.flatnonzero(speakers == trained_speaker)
    donor = np.flatnonzero(speakers == speakers[train[-1]])[: len(rows)]
    other = demo.x.copy()
    other[rows[: len(donor)]] = demo.x[donor]  # a training speaker's recordings replaced
    changed = fold_view(dataclasses.replace(demo, x=other), "speaker", train, test)
    assert not np.allclose(changed.x[rows], view.x[rows])  # that speaker's features moved ...
    assert changed.x[test].tobytes() == view.x[test].tobytes()  # ... the held-out speaker's did not

    own = demo.x.copy()
    own[test[1:]] = demo.x[test[1:]] + 5.0  # the held-out speaker's own recordings do move its statistics
    moved = fold_view(dataclasses.replace(demo, x=own), "speaker", train, test)
    assert not np.allclose(moved.x[test[0]], view.x[test[0]])
    assert moved.x[train].tobytes() == view.x[train].tobytes()


def test_under_10_fold_a_speaker_takes_the_statistics_of_its_training_rows_and_the_test_part_changes_nothing(demo):
    speakers = np.asarray(demo.speakers)
    train, test = make_folds(demo, "kfold", 3, 46)[0]
    assert set(speakers[test]) <= set(speakers[train])  # shuffled folds: every test speaker is also trained on
    view = fold_view(demo, "speaker", train, test)
    s = speakers[test[0]]
    expected = frame_statistics(demo.x[train][speakers[train] == s]).apply(demo.x[test[:1]])[0]
    np.testing.assert_array_equal(view.x[test[0]], expected)
    other = demo.x.copy()
    other[test] = demo.x[test][::-1] + 5.0
    changed = fold_view(dataclasses.replace(demo, x=other, y=np.roll(demo.y, 1, axis=1)), "speaker", train, test)
    assert changed.x[train].tobytes() == view.x[train].tobytes()
    # the folds differ, so each fold has its own copy; leave-one-speaker-out shares one
    views = fold_views(demo, "speaker", make_folds(demo, "kfold", 3, 46))
    assert len({id(v) for v in views}) == 3 and view_blocks(views)[0].shape[0] == 3 * len(demo.x)
    assert len({id(v) for v in fold_views(demo, "speaker", make_folds(demo, "speaker", 10, 46))}) == 1


def test_speaker_normalisation_needs_a_speaker_for_every_recording(demo):
    from timnet_keras.errors import TimnetError

    anonymous = dataclasses.replace(demo, speakers=("",) * len(demo.x))
    with pytest.raises(TimnetError, match="speaker_regex"):
        fold_views(anonymous, "speaker", make_folds(demo, "kfold", 3, 46))
    assert speaker_normalised(demo.x, demo.speakers, []).tobytes() == demo.x.astype(np.float32).tobytes()


# --- runs: train, test, predict, export ------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny DEMO runs trained by the command line: utterance (10-fold) and speaker (by speaker)."""
    root = tmp_path_factory.mktemp("normalised")
    save_feature_cache(str(root / "MFCC" / "DEMO.npz"), demo_features(n_utterances=24))
    paths = ["--mfcc_path", str(root / "MFCC"), "--model_path", str(root / "Models"), "--result_path", str(root / "Results")]
    made = {}
    for option, protocol in (("utterance", "kfold"), ("speaker", "speaker")):
        before = set(glob.glob(str(root / "Models" / "DEMO_*")))
        assert cli.main(["--mode", "train", "--data", "DEMO", "--normalise", option, "--protocol", protocol, *TINY,
                         *paths]) == 0
        (made[option],) = set(glob.glob(str(root / "Models" / "DEMO_*"))) - before
    return root, paths, made


@pytest.mark.jax_pass
@pytest.mark.slow
def test_a_run_records_its_normalisation_and_test_mode_applies_it(runs, capsys):
    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.runs.store import read_fold_record, read_run_config

    root, paths, made = runs
    features = load_feature_cache(str(root / "MFCC" / "DEMO.npz"))
    for option, run in made.items():
        config = read_run_config(run)
        assert config.normalise == option and f"norm-{option}" in os.path.basename(run)
        assert json.load(open(os.path.join(run, "run_config.json")))["normalise"] == option
        trained = json.load(open(os.path.join(root, "Results", os.path.basename(run), "summary.json")))
        assert trained["normalise"] == option
        assert cli.main(["--mode", "test", "--test_path", run, "--data", "DEMO", *paths]) == 0
        (tested,) = glob.glob(str(root / "Results" / f"{os.path.basename(run)}_test_*" / "summary.json"))
        assert json.load(open(tested))["pooled"] == pytest.approx(trained["pooled"], abs=1e-4)
        # what test mode rebuilt is the normalised fold, not the raw one
        train, test = make_folds(features, config.protocol, config.split_fold, config.seed)[0]
        fold_1 = TimnetClassifier.from_run(run, fold=1)
        record = read_fold_record(run, 1)
        normalised = fold_1.predict(fold_view(features, option, train, test).x[test], verbose=0)
        np.testing.assert_allclose(normalised, record.probabilities, atol=1e-5)
        assert not np.allclose(fold_1.predict(features.x[test], verbose=0), record.probabilities, atol=1e-5)
    assert "utterance-normalised features" in capsys.readouterr().out


@pytest.mark.jax_pass
@pytest.mark.slow
def test_predict_normalises_the_runs_way_and_says_with_which_statistics(runs, tmp_path, capsys):
    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.features.demo import write_demo_wavs

    root, paths, made = runs
    wavs = write_demo_wavs(str(tmp_path / "wavs"), n_utterances=8)
    given, enrolment = wavs[:4], wavs[4:]
    enrol_dir = tmp_path / "enrol"
    enrol_dir.mkdir()
    for path in enrolment:
        os.link(path, enrol_dir / os.path.basename(path))

    utterance = TimnetClassifier.from_run(made["utterance"])
    raw = utterance.preprocessor.raw(given)
    np.testing.assert_allclose(utterance.predict_files(given), utterance.predict(utterance_normalised(raw), verbose=0),
                               atol=1e-6)
    assert utterance.last_normalisation.startswith("utterance")
    assert not np.allclose(utterance.predict_files(given), utterance.predict(raw, verbose=0), atol=1e-5)

    speaker = TimnetClassifier.from_run(made["speaker"])
    together = speaker.predict_files(given)
    assert "4 recordings given together" in speaker.last_normalisation
    np.testing.assert_allclose(together, speaker.predict(frame_statistics(raw).apply(raw), verbose=0), atol=1e-6)
    enrolled = speaker.predict_files(given, enrol=str(enrol_dir))
    assert f"enrolment folder {enrol_dir} (4 recordings)" in speaker.last_normalisation
    statistics = frame_statistics(speaker.preprocessor.raw(sorted(str(p) for p in enrol_dir.iterdir())))
    np.testing.assert_allclose(enrolled, speaker.predict(statistics.apply(raw), verbose=0), atol=1e-6)
    assert not np.allclose(enrolled, together, atol=1e-6)
    assert isinstance(statistics, Statistics)

    out = str(tmp_path / "p.csv")
    assert cli.main(["--mode", "predict", "--test_path", made["speaker"], "--data", "DEMO", "--wav", *given,
                     "--enrol", str(enrol_dir), "--output", out, *paths]) == 0
    printed = capsys.readouterr().out
    assert f"normalisation: speaker: the statistics of enrolment folder {enrol_dir} (4 recordings)" in printed
    header, *lines = open(out).read().splitlines()
    assert header.startswith("file,label,confidence,abstain,normalisation,") and len(lines) == 4
    assert all("enrolment folder" in line for line in lines)

    # over time: one speaker's statistics for every window of every recording given
    assert cli.main(["--mode", "predict", "--test_path", made["speaker"], "--data", "DEMO", "--wav", *given,
                     "--window", "1", "--hop", "0.5", "--output", str(tmp_path / "t.json"), *paths]) == 0
    assert "windows of the 4 recordings given together" in capsys.readouterr().out
    assert all("windows of the 4 recordings" in row["normalisation"] for row in json.load(open(tmp_path / "t.json")))

    # the authors' raw features keep their predictions file as it was: no normalisation column
    assert cli.main(["--mode", "predict", "--test_path", made["utterance"], "--data", "DEMO", "--wav", *given,
                     "--output", str(tmp_path / "u.json"), *paths]) == 0
    assert all(row["normalisation"].startswith("utterance") for row in json.load(open(tmp_path / "u.json")))


@pytest.mark.jax_pass
@pytest.mark.slow
def test_a_cache_of_normalised_features_and_flags_that_do_not_fit_the_run_are_refused(runs, tmp_path, capsys):
    root, paths, made = runs
    mismatched = tmp_path / "MFCC"
    save_feature_cache(str(mismatched / "DEMO.npz"),
                       normalised_features(load_feature_cache(str(root / "MFCC" / "DEMO.npz")), "utterance"))
    other = ["--mfcc_path", str(mismatched), "--model_path", str(tmp_path / "Models"), "--result_path", str(tmp_path / "R")]
    for argv in (["--mode", "test", "--test_path", made["utterance"]], ["--mode", "test", "--test_path", made["speaker"]],
                 ["--mode", "train", "--normalise", "utterance", *TINY]):
        assert cli.main([*argv, "--data", "DEMO", *other]) == 2
        (error,) = errors_of(capsys)
        assert "holds utterance-normalised features" in error and "re-extract" in error
    assert not os.path.exists(tmp_path / "Models" / "DEMO") and not glob.glob(str(tmp_path / "Models" / "DEMO_*"))

    from timnet_keras.features.demo import write_demo_wavs

    wav = write_demo_wavs(str(tmp_path / "wavs"), n_utterances=1)[0]
    refusals = [
        (["--mode", "test", "--test_path", made["utterance"], "--normalise", "speaker"], "--normalise applies to --mode train"),
        (["--mode", "predict", "--test_path", made["utterance"], "--wav", wav, "--enrol", str(tmp_path)],
         "only a run trained with --normalise speaker"),
        (["--mode", "predict", "--test_path", made["speaker"], "--wav", wav, "--enrol", str(tmp_path / "nope")],
         "no such folder"),
        (["--mode", "export", "--test_path", made["speaker"], "--output", str(tmp_path / "exported")],
         "not exported"),
        (["--mode", "train", "--normalise", "cepstral"], "invalid choice"),
    ]
    for argv, message in refusals:
        try:
            code = cli.main([*argv, "--data", "DEMO", *paths])
        except SystemExit as exit_:
            code = exit_.code
        assert code == 2
        (error,) = errors_of(capsys)
        assert message in error
    assert not os.path.exists(tmp_path / "exported")


@pytest.mark.slow
def test_an_exported_utterance_model_normalises_inside_itself_and_a_speaker_one_is_refused(demo, tmp_path):
    import keras

    from timnet_keras.model.backbone import TimnetBackbone
    from timnet_keras.model.classifier import TimnetClassifier
    from timnet_keras.model.export import ExportError
    from timnet_keras.model.layers import UtteranceNormalisation

    # the graph's normalisation is the library's, padding found the same way (DEMO at 2 s: padded utterances)
    raw = demo.x
    assert (~real_frames(raw)).any()
    np.testing.assert_allclose(np.asarray(UtteranceNormalisation()(raw)), utterance_normalised(raw), atol=2e-4)

    classifier = TimnetClassifier(TimnetBackbone(frames=raw.shape[1], num_blocks=2), 4, labels=demo.labels,
                                  preprocessor=MfccPreprocessor(44100, normalise="utterance"))
    expected = classifier.predict(utterance_normalised(raw), verbose=0)
    assert not np.allclose(classifier.predict(raw, verbose=0), expected, atol=1e-5)
    manifest = classifier.export_bundle(str(tmp_path / "keras"), "keras")
    assert manifest.preprocessing["normalise"] == "utterance" and "raw MFCC" in manifest.preprocessing["normalisation"]
    exported = keras.saving.load_model(str(tmp_path / "keras" / "model.keras"))
    np.testing.assert_allclose(exported.predict(raw, verbose=0), expected, atol=1e-5)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        classifier.export_bundle(str(tmp_path / "saved"), "saved_model")
        served = tf.saved_model.load(str(tmp_path / "saved" / "saved_model"))
        np.testing.assert_allclose(served.serve(tf.constant(raw)).numpy(), expected, atol=1e-5)
        classifier.export_bundle(str(tmp_path / "tflite"), "tflite")  # cumulative sums and maxima convert as they are
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "tflite" / "model.tflite"))
        source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        interpreter.resize_tensor_input(source["index"], raw.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], raw)
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(target["index"]), expected, atol=1e-3)
        if importlib.util.find_spec("tf2onnx") and importlib.util.find_spec("onnxruntime"):
            import onnxruntime

            classifier.export_bundle(str(tmp_path / "onnx"), "onnx")
            session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
            probabilities = session.run(None, {session.get_inputs()[0].name: raw})[0]
            np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    speaker = TimnetClassifier(TimnetBackbone(frames=raw.shape[1], num_blocks=2), 4,
                               preprocessor=MfccPreprocessor(44100, normalise="speaker"))
    with pytest.raises(ExportError, match="--enrol"):
        speaker.export_bundle(str(tmp_path / "speaker"), "keras")
    assert not os.path.exists(tmp_path / "speaker")


# --- the grid and its report -----------------------------------------------------------------------------

def test_normalised_cells_get_keys_of_their_own_and_the_raw_cells_keep_theirs():
    from timnet_keras.paper.grid import GridSpec, expand

    base = GridSpec(("1", "3", "B"), ("EMODB", "CASIA"), protocols=("kfold", "speaker"))
    raw = expand(base)
    every = expand(dataclasses.replace(base, normalisations=("none", "utterance", "speaker")))
    assert [u.key for u in every if u.normalise == "none"] == [u.key for u in raw]
    keys = [u.key for u in every]
    assert len(set(keys)) == len(keys)
    assert "cv/EMODB/timnet/seed46-e500-speaker-norm-utterance/fold01" in keys
    assert "cv/CASIA/no_df/seed32-e500-norm-speaker/fold10" in keys
    normalised = [u for u in every if u.normalise != "none"]
    assert normalised and all(u.variant in ("timnet", "tcn", "no_bd", "no_ms", "no_df") for u in normalised)
    assert len(normalised) == 2 * sum(u.variant in ("timnet", "tcn", "no_bd", "no_ms", "no_df") for u in raw)


def test_every_committed_record_keeps_its_key_and_stays_done(capsys):
    from timnet_keras.paper.registry import Unit, finished_units

    registry = os.path.join(REPO, "reproduction")
    paths = glob.glob(os.path.join(registry, "records", "**", "*.json"), recursive=True)
    assert len(paths) >= 300
    for path in paths:
        data = json.load(open(path))
        unit = Unit.from_json(data["unit"])
        key = os.path.relpath(path, os.path.join(registry, "records"))[: -len(".json")].replace(os.sep, "/")
        assert unit.normalise == "none" and unit.key == data["key"] == key
        assert "normalise" not in unit.to_json() and {k: unit.to_json()[k] for k in data["unit"]} == data["unit"]
    done = finished_units(registry)
    assert len(done) == len(paths)
    assert cli.reproduce_main(["--table", "1,3,B", "--corpora", "EMODB,CASIA,EMOVO", "--protocol", "both",
                               "--normalise", "none,utterance,speaker", "--dry-run", "--registry", registry]) == 0
    listed = dict(tuple(reversed(line.split("  ", 1))) for line in capsys.readouterr().out.splitlines())
    assert {key for key, state in listed.items() if state == "done"} == done & set(listed)
    assert len(done & set(listed)) >= 300
    assert all(listed[key] == "todo" for key in listed if "-norm-" in key)


@pytest.mark.jax_pass
@pytest.mark.slow
def test_a_normalised_grid_unit_is_the_same_fold_as_the_train_mode(tmp_path):
    from timnet_keras.paper.grid import UnitRunner
    from timnet_keras.paper.registry import Unit
    from timnet_keras.runs.run_config import ModelConfig, RunConfig, TrainingConfig
    from timnet_keras.runs.modes import run_cross_validation

    features = demo_features(n_utterances=40)
    from timnet_keras.config import default_num_blocks

    model = ModelConfig(frames=features.x.shape[1], num_classes=4, num_blocks=default_num_blocks("DEMO"))
    config = RunConfig(data="DEMO", model=model, training=TrainingConfig(epoch=1), seed=46, split_fold=2,
                       normalise="speaker")
    folds = run_cross_validation(features, config, str(tmp_path), log=lambda *_: None, run_eagerly=CHEAP_EAGER)
    unit = Unit("cv", "DEMO", "timnet", 46, 1, fold=2, n_folds=2, normalise="speaker")
    record = UnitRunner(run_eagerly=CHEAP_EAGER).run(unit, features)
    np.testing.assert_array_equal(record.test_indices, folds[1].test_indices)
    np.testing.assert_allclose(record.probabilities, folds[1].probabilities, atol=1e-5)
    assert record.training["normalise"] == "speaker" and record.to_json()["unit"]["normalise"] == "speaker"
    raw = UnitRunner(run_eagerly=CHEAP_EAGER).run(dataclasses.replace(unit, normalise="none"), features)
    assert not np.allclose(raw.probabilities, record.probabilities, atol=1e-5)


@pytest.mark.jax_pass
@pytest.mark.slow
def test_the_grid_trains_normalised_cells_beside_the_raw_ones(demo_mfcc, tmp_path, capsys):
    registry = str(tmp_path / "registry")
    flags = tiny_grid_flags(demo_mfcc, registry)
    flags[flags.index("--seeds") + 1] = "1"
    assert cli.reproduce_main([*flags, "--normalise", "utterance,none"]) == 0
    written = sorted(os.path.relpath(p, os.path.join(registry, "records"))
                     for p in glob.glob(os.path.join(registry, "records", "**", "*.json"), recursive=True))
    assert written == ["cv/DEMO/timnet/seed46-e1-norm-utterance/fold01.json", "cv/DEMO/timnet/seed46-e1-norm-utterance/fold02.json",
                       "cv/DEMO/timnet/seed46-e1/fold01.json", "cv/DEMO/timnet/seed46-e1/fold02.json"]
    report = open(os.path.join(registry, "R.md")).read()
    assert "DEMO (utterance-normalised), TIM-Net" in report  # a check run: listed apart, never in the tables


def _loso_records(registry, normalise, correct):
    from timnet_keras.paper.registry import Unit, unit_record, write_record

    labels = ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad")
    for fold, right in enumerate(correct, start=1):
        y_true = np.arange(10) % 7
        y_pred = np.where(np.arange(10) < right, y_true, (y_true + 1) % 7)
        unit = Unit("cv", "EMODB", "timnet", 46, 500, fold, 10, protocol="speaker", normalise=normalise)
        write_record(registry, unit_record(unit, labels, np.arange(10), y_true, np.eye(7)[y_pred], held_out_speakers=(f"{fold:02d}",)))


def test_the_report_sets_normalised_tim_net_beside_raw_tim_net_fold_by_fold(tmp_path):
    from timnet_keras.paper.report import render

    registry = str(tmp_path)
    _loso_records(registry, "none", [6] * 10)
    without = render(registry)
    assert "normalised" not in without.split("## New speakers")[1].split("##")[0]
    _loso_records(registry, "utterance", [8] * 10)
    _loso_records(registry, "speaker", [7, 7, 7, 7, 7, 6, 6, 6, 6, 6])
    report = render(registry)
    table = report.split("## New speakers")[1].split("\n## ")[0]
    utterance = next(line for line in table.splitlines() if line.startswith("| EMODB | TIM-Net, utterance-normalised |"))
    speaker = next(line for line in table.splitlines() if line.startswith("| EMODB | TIM-Net, speaker-normalised |"))
    raw = next(line for line in table.splitlines() if line.startswith("| EMODB | TIM-Net |"))
    columns = lambda line: [c.strip() for c in line.strip().strip("|").split(" | ")]
    assert columns(raw)[5].startswith("60.00") and columns(utterance)[5].startswith("80.00")
    assert columns(utterance)[8].startswith("-20.00") and "(10)" in columns(utterance)[8]  # raw − normalised, 10 pairs
    assert columns(speaker)[8].startswith("-5.00")
    # the raw figures and every other table are as they were
    assert raw in without and report.split("## New speakers")[0] == without.split("## New speakers")[0]
