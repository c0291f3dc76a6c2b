"""``python -m autobalance …``: the command line, also as ``torchrun … -m autobalance search …``."""

import sys

from autobalance.cli import main

if __name__ == "__main__":
    sys.exit(main())
