"""`python -m magejax.cli ...`: the `magejax` command."""
import sys

from magejax.cli import main

sys.exit(main())
