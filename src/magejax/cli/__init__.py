"""The `magejax` command line: `magejax train ...` runs seeds in parallel into a run directory,
`magejax plot RUN_DIR... --out PNG` overlays runs' learning curves.

A run directory holds `config.json`, `metrics.jsonl` (one line per evaluation and seed, flushed as
it goes), `checkpoints/` (the newest few complete training states), `curve.png` and
`summary.json`, and with `--tensorboard` also `tensorboard/` (TensorBoard event files). With
several JAX devices the seeds are sharded over them (`magejax.runs.parallel`; several hosts: see
docs/running.md). `magejax train --resume RUN_DIR` continues a killed run from its newest good
checkpoint and ends with exactly the files an uninterrupted run writes. Bad input prints one line
`magejax: error: ...` and exits 2; a run that diverges (a non-finite evaluation return, loss or other metric)
exits 1.
"""
from __future__ import annotations

import sys

from magejax.cli.args import UsageError, parser


def main(argv=None) -> int:
    """Entry point of the `magejax` console script. Returns 0; exits 2 on bad input, 1 on divergence."""
    args = parser().parse_args(argv)
    # Imported per command, so `magejax --help` and bad-input errors never wait for JAX.
    if args.command == "train":
        from magejax.cli.train import train as command
    else:
        from magejax.cli.plot import plot as command
    try:
        return command(args)
    except UsageError as e:
        print(f"magejax: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # before training started (imports, set-up); during it: cli/train.py
        print("\nmagejax: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
