"""``python -m snsm_workbench``: the command line."""

import sys

from snsm_workbench.cli import main

sys.exit(main())
