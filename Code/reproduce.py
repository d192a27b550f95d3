"""Thin command line over timnet_keras.cli.reproduce_main: the paper's tables as a resumable grid."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from timnet_keras.cli import reproduce_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(reproduce_main())
