"""The `magejax` command line: `magejax train ...` runs seeds in parallel into a run directory,
`magejax sweep ... --lam 0.05 0.1 0.2 1 --out DIR` trains several hyper-parameter values in one
compiled program, `magejax plot RUN_DIR... --out PNG` overlays runs' learning curves, `magejax eval RUN_DIR`
evaluates a run's newest good checkpoint and `magejax render RUN_DIR --out FILE` films one episode
of its trained policy.

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

from magejax.runs import interrupts
from magejax.runs.interrupts import INTERRUPTED

# Nothing heavy is imported here: the console script installs its Ctrl-C handler (`console`)
# before the flags module pulls in JAX (several seconds in which a Ctrl-C must work too).


def main(argv=None) -> int:
    """`magejax ...` in-process (tests, notebooks). Returns 0; exits 2 on bad input, 1 on divergence,
    130 on Ctrl-C (as a `KeyboardInterrupt`: in-process, Python's own Ctrl-C handling stays)."""
    from magejax.cli.args import UsageError, parser

    try:
        args = parser().parse_args(argv)
        if args.command == "render" or getattr(args, "video_every", None):
            # MuJoCo picks its OpenGL backend when first imported (Brax imports it), so choose now.
            from magejax.rendering.headless_gl import use_default_backend
            use_default_backend()
        # Imported per command, so `magejax --help` and bad-input errors never wait for JAX.
        if args.command == "train":
            from magejax.cli.train import train as command
        elif args.command == "sweep":
            from magejax.cli.sweep import sweep as command
        elif args.command == "eval":
            from magejax.cli.evaluate import evaluate as command
        elif args.command == "render":
            from magejax.cli.render import render as command
        else:
            from magejax.cli.plot import plot as command
        return command(args)
    except UsageError as e:
        print(f"magejax: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # in-process only: the console script never gets here (`console`)
        print("\nmagejax: interrupted", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None


def console() -> None:
    """The `magejax` console script: `main` with the process's arguments, Ctrl-C handled by
    `runs.interrupts` (one line, exit 130, at any moment; see there why not by KeyboardInterrupt)."""
    interrupts.exit_on_interrupt()
    sys.exit(main())
