"""Thin command line over timnet_keras.cli.build_preset_main; runs from the root or from Code/."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from timnet_keras.cli import build_preset_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(build_preset_main())
