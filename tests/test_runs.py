"""The test job: the authors' released EMODB weights through our whole pipeline (REFERENCE.md)."""
import glob
import json

import pytest

from conftest import EMODB_46, needs_emodb, needs_emodb_46
from timnet_keras.runs import modes as runs


@needs_emodb
@needs_emodb_46
@pytest.mark.shared
def test_authors_emodb_weights_reproduce_93_8_percent(emodb_features, tmp_path):
    summary = runs.test(emodb_features, EMODB_46, str(tmp_path), data_name="EMODB", log=lambda *_: None)
    assert [round(f["war"], 2) for f in summary["folds"]] == [98.15, 100.0, 90.74, 92.59, 92.59, 94.34, 83.02, 98.11, 92.45, 96.23]
    assert summary["pooled"]["war"] == pytest.approx(93.83, abs=0.01)
    assert summary["pooled"]["uar"] == pytest.approx(93.27, abs=0.01)
    assert summary["test_selected"] is True  # their epochs were chosen on the test folds
    written = json.load(open(glob.glob(str(tmp_path / "*" / "summary.json"))[0]))
    assert written["pooled"]["war"] == summary["pooled"]["war"]
