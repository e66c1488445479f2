"""`python -m magejax.cli ...`: the `magejax` command."""
from magejax.cli import console

console()
