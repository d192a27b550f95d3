"""Presets: an honest run packed with its model card and provenance, loaded by name in a fresh interpreter."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

pytestmark = pytest.mark.jax_pass  # trains a tiny run: once, in make test's JAX pass
TINY = ["--epoch", "2", "--dilation_size", "2", "--split_fold", "2", "--batch_size", "8"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from timnet_keras.cli import main

    root = tmp_path_factory.mktemp("presets")
    paths = ["--model_path", str(root / "Models"), "--result_path", str(root / "Results"), "--mfcc_path", str(root / "MFCC")]
    assert main(["--mode", "train", "--data", "DEMO", *TINY, "--calibrate", *paths]) == 0
    (run,) = os.listdir(root / "Models")
    return root, str(root / "Models" / run)


def test_a_preset_loads_by_name_in_a_fresh_interpreter_and_predicts_as_its_run(demo_run):
    from timnet_keras.cli import build_preset_main

    root, run = demo_run
    presets = root / "presets"
    assert build_preset_main([run, "--name", "demo", "--presets_dir", str(presets), "--mfcc_path", str(root / "MFCC")]) == 0
    card = (presets / "demo" / "model_card.md").read_text()
    provenance = json.loads((presets / "demo" / "provenance.json").read_text())
    assert "WAR" in card and "95 % interval" in card and "Terms of use" in card and "after each fold's temperature" in card
    assert provenance["selection"] == "last" and len(provenance["test_utterances"]) == 2
    assert len(provenance["split_hash"]) == 64 and provenance["figures"]["war"]["per_fold"]

    from timnet_keras.model.classifier import TimnetClassifier

    signal = np.random.default_rng(3).normal(scale=0.1, size=16000).astype(np.float32)
    expected = TimnetClassifier.from_run(run).predict_signals([signal], 16000)
    np.save(root / "signal.npy", signal)
    code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]);"
            "from timnet_keras import TimnetClassifier;"
            "c = TimnetClassifier.from_preset('demo', presets_dir=sys.argv[2]);"
            "print(repr(c.predict_signals([np.load(sys.argv[3])], 16000).tolist()))")
    env = {**os.environ, "no_proxy": "*", "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-c", code, REPO, str(presets), str(root / "signal.npy")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_allclose(np.array(eval(out.stdout.strip().splitlines()[-1])), expected, atol=1e-6)


def test_a_test_selected_run_an_unknown_name_and_a_users_folder_are_refused(demo_run, tmp_path):
    from timnet_keras.runs import presets
    from timnet_keras.runs.store import read_run_config, write_run_config

    root, run = demo_run
    with pytest.raises(presets.PresetError, match="no preset 'nope'"):
        presets.preset_path("nope", str(tmp_path))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(presets.PresetError, match="not a preset"):
        presets.build_preset(run, "mine", str(tmp_path), overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    config = read_run_config(run)
    config.selection = "best-test"
    write_run_config(run, config)
    try:
        with pytest.raises(presets.PresetError, match="test-selected"):
            presets.build_preset(run, "selected", str(tmp_path))
    finally:
        config.selection = "last"
        write_run_config(run, config)
    assert not (tmp_path / "selected").exists()


def test_the_split_hash_changes_when_a_fold_holds_other_rows():
    from timnet_keras.runs.presets import split_hash
    from timnet_keras.training.record import FoldRecord

    fold = lambda k, rows: FoldRecord(k, np.array(rows), np.zeros(len(rows), int), np.ones((len(rows), 2)) / 2)
    assert split_hash([fold(1, [0, 1]), fold(2, [2, 3])]) == split_hash([fold(1, [0, 1]), fold(2, [2, 3])])
    assert split_hash([fold(1, [0, 1]), fold(2, [2, 3])]) != split_hash([fold(1, [0, 2]), fold(2, [1, 3])])
