"""`python -m paymon.cli`: the same as the `paymon` command."""

import sys

from paymon.cli import main

sys.exit(main())
