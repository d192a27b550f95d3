"""Atomic writes: a failed write leaves the old file and no temporary one."""
import os

import pytest

from timnet_keras.io import write_atomic, write_json_atomic, read_json


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "r.json")
    write_json_atomic(path, {"a": 1})

    def dies(tmp):
        open(tmp, "w").write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, dies)
    assert os.listdir(tmp_path) == ["r.json"] and read_json(path) == {"a": 1}


def test_the_temporary_keeps_the_extension_writers_look_at(tmp_path):
    seen = []
    write_atomic(str(tmp_path / "x.npz"), lambda tmp: (seen.append(tmp), open(tmp, "w").close()))
    assert seen[0].endswith(".npz") and os.listdir(tmp_path) == ["x.npz"]
