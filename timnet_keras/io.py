"""Files that are never half-written, run time stamps, and the versions a result depends on.

Every file the package writes goes through `write_atomic`: the content goes to
a temporary name beside the target and is renamed over it only when complete,
so an interrupted process leaves either the old file or the new one.
"""
import datetime
import json
import os
import platform

import numpy as np


def write_atomic(path, write):
    """Calls `write(temporary_path)`, then renames the result to `path`.

    The temporary name keeps the target's extension (numpy and matplotlib
    look at it) and is removed if `write` fails. The folder must exist:
    a missing folder is the caller's error to report, with the caller's path.

    Example:
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> write_atomic(os.path.join(folder, "a.txt"), lambda tmp: open(tmp, "w").write("hi"))
        >>> os.listdir(folder)
        ['a.txt']
    """
    root, extension = os.path.splitext(path)
    tmp = f"{root}.tmp-{os.getpid()}{extension}"
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:  # name the file the user asked for, not our temporary name (or none, mid-write)
        if error.errno is not None and error.filename in (None, tmp):
            raise OSError(error.errno, error.strerror, path) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path, text):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    write_atomic(path, write)


def write_json_atomic(path, data):
    write_text_atomic(path, json.dumps(data, indent=1))


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def time_stamp():
    """Seconds-resolution local time, as run folders are named."""
    return datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def versions():
    """The library versions a result depends on (backend included)."""
    import keras
    import sklearn

    from timnet_keras import __version__

    return {
        "timnet_keras": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }
