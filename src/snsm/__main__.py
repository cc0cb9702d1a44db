"""``python -m snsm``: the command line."""

import sys

from snsm.cli import main

sys.exit(main())
