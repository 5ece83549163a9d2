"""``python -m seqlib`` and the ``seqlib`` console script: see :mod:`seqlib.cli`."""

import sys

from seqlib.cli import main

if __name__ == "__main__":
    sys.exit(main())
