"""`python -m timnet_keras ...` is `timnet ...` (Code/main.py)."""
import sys

from timnet_keras.cli import main

if __name__ == "__main__":
    sys.exit(main())
