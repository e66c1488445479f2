"""Never lose a run: a failed write is one `magejax: error:` line naming what failed and the newest
good checkpoint (exit 1), and leaves whole evaluations only; a run directory that cannot hold a
run is refused (exit 2) before anything in it changes.

The disk fills up at a chosen write: the metrics file's raw writes are wrapped so that one of them
writes half its bytes and then raises ENOSPC, as a full disk does; a checkpoint save raises it."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from magejax import cli
from magejax.runs import checkpoint, metrics_io
from magejax.runs.run_dir import checkpoint_steps

RUN = ["train", "--preset", "tiny", "--seeds", "2", "--steps", "300", "--eval-every", "100", "--quiet"]


def _exit_code(argv) -> int:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    return e.value.code


def _fails_with_one_line(argv, capsys) -> str:
    """Run the CLI, expect exit 1 and a single error line without a traceback; return that line."""
    assert _exit_code(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


class _FillsUp:
    """A raw file whose `fail_at`-th write (1-based) writes half its bytes, then raises ENOSPC."""

    def __init__(self, raw, fail_at: int):
        self._raw, self._fail_at, self._writes = raw, fail_at, 0

    def write(self, data) -> int:
        self._writes += 1
        if self._writes == self._fail_at:
            self._raw.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._raw.write(data)

    def __getattr__(self, name):
        return getattr(self._raw, name)




def test_disk_full_while_writing_metrics(tmp_path, monkeypatch, capsys):
    init = metrics_io.MetricsWriter.__init__

    def filling_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._file = _FillsUp(self._file, fail_at=3)  # the rows of steps 0 and 100 go through

    monkeypatch.setattr(metrics_io.MetricsWriter, "__init__", filling_init)
    out = tmp_path / "run"
    err = _fails_with_one_line(RUN + ["--out", str(out)], capsys)
    assert err.startswith(f"magejax: error: cannot write {out / 'metrics.jsonl'} at env step 200: "
                          "No space left on device; the newest good checkpoint is at env step 100")
    # Whole evaluations only: the half-written rows of step 200 are gone.
    text = (out / "metrics.jsonl").read_text()
    assert text.endswith("\n") and [json.loads(line)["env_step"] for line in text.splitlines()] == [0, 0, 100, 100]
    assert checkpoint_steps(out) == [100]
    # After freeing space the run resumes from the good checkpoint and finishes.
    monkeypatch.setattr(metrics_io.MetricsWriter, "__init__", init)
    assert cli.main(["train", "--resume", str(out), "--quiet"]) == 0
    assert [r["env_step"] for r in metrics_io.read_metrics(out)] == [0, 0, 100, 100, 200, 200, 300, 300]


def test_disk_full_while_writing_a_checkpoint(tmp_path, monkeypatch, capsys):
    save = checkpoint.RunCheckpoints.save

    def filling_save(self, state, progress):
        if progress.env_step == 200:
            (self.directory / "200.orbax-checkpoint-tmp-0").mkdir()  # what orbax leaves mid-save
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(self, state, progress)

    monkeypatch.setattr(checkpoint.RunCheckpoints, "save", filling_save)
    out = tmp_path / "run"
    err = _fails_with_one_line(RUN + ["--out", str(out)], capsys)
    assert err.startswith(f"magejax: error: cannot write the checkpoint at env step 200 in "
                          f"{out / 'checkpoints'}: No space left on device; the newest good checkpoint is at "
                          "env step 100")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["100"]  # nothing partial left


def test_checkpoints_as_a_file_is_refused_on_resume_and_nothing_changes(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(RUN + ["--out", str(out)]) == 0
    capsys.readouterr()
    import shutil
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").write_text("not a folder")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert _exit_code(["train", "--resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoints: exists and is not a directory" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(RUN + ["--out", str(out)]) == 0
    capsys.readouterr()
    from magejax.runs import run_dir

    held = run_dir.lock_run_dir(out)  # another process's lock: flock locks are per open file
    try:
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        assert _exit_code(["train", "--resume", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "in use by another magejax process" in err
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    finally:
        import os
        os.close(held)
    assert cli.main(["train", "--resume", str(out), "--quiet"]) == 0  # free again


def test_disk_full_while_drawing_the_curve(tmp_path, monkeypatch, capsys):
    """The training is complete when the plot is drawn: its failure names what is safe, and leaves
    no half-written PNG."""
    from matplotlib.figure import Figure

    savefig = Figure.savefig

    def filling_savefig(self, path, **kwargs):
        savefig(self, path, **kwargs)
        path.write_bytes(path.read_bytes()[:100])  # the disk filled up part way through
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", filling_savefig)
    out = tmp_path / "run"
    err = _fails_with_one_line(RUN + ["--out", str(out)], capsys)
    assert err.startswith(f"magejax: error: cannot write {out / 'curve.png'}: No space left on device; "
                          f"the run itself is complete (metrics and the final checkpoint, at env step 300")
    assert not list(out.glob("*curve*")) and not (out / "summary.json").exists()
    assert checkpoint_steps(out) == [100, 200, 300] and len(metrics_io.read_metrics(out)) == 8
    monkeypatch.setattr(Figure, "savefig", savefig)
    assert cli.main(["plot", str(out), "--out", str(tmp_path / "redrawn.png")]) == 0  # as the line says


# --- a real filesystem that fills up -------------------------------------------------------------

def _fill_up(directory: Path) -> None:
    """Write a filler file into `directory` until its filesystem has no byte left."""
    with open(directory / "filler", "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 16 MiB tmpfs mounted for the test (needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def _fills_before(monkeypatch, owner, name: str, when) -> None:
    """Make `owner.name` fill the disk up just before it runs, the first time `when(args)` holds."""
    original = getattr(owner, name)
    done = []

    def wrapped(*args, **kwargs):
        if not done and when(args):
            done.append(True)
            _fill_up(_DISK[0])
        return original(*args, **kwargs)
    monkeypatch.setattr(owner, name, wrapped)


_DISK = [None]  # the mounted tmpfs of the running test


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert cli.main(RUN + ["--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("owner, name, when, failed", [
    # The disk fills up just before the checkpoint at step 200: its rows are already written.
    (checkpoint.RunCheckpoints, "save", lambda a: a[2].env_step == 200,
     ["the checkpoint at env step 200 in {out}/checkpoints"]),
    # ... or just before the rows of step 200. An append that fits in the file's last, partly used
    # page still succeeds on a full tmpfs; then the CSV, rewritten whole, is what fails.
    (metrics_io.MetricsWriter, "write_rows", lambda a: a[1] == 200,
     ["{out}/metrics.jsonl at env step 200", "{out}/metrics.csv at env step 200"]),
])
def test_a_real_full_disk_is_one_line_and_a_resume_after_freeing_space_is_exact(
        small_tmpfs, reference, monkeypatch, capsys, owner, name, when, failed):
    _DISK[0] = small_tmpfs
    out = small_tmpfs / "run"
    _fills_before(monkeypatch, owner, name, when)
    err = _fails_with_one_line(RUN + ["--out", str(out)], capsys)
    assert any(err.startswith(f"magejax: error: cannot write {what.format(out=out)}: No space left on device; ")
               for what in failed), err
    assert err.rstrip().endswith("the newest good checkpoint is at env step 100")
    assert checkpoint_steps(out) == [100] and not list((out / "checkpoints").glob("*tmp*"))
    assert not [p for p in out.iterdir() if ".tmp" in p.name]  # nothing partial left behind
    steps = [r["env_step"] for r in metrics_io.read_metrics(out)]
    assert steps in ([0, 0, 100, 100], [0, 0, 100, 100, 200, 200])  # whole evaluations only
    (small_tmpfs / "filler").unlink()
    monkeypatch.undo()
    assert cli.main(["train", "--resume", str(out), "--quiet"]) == 0
    summary = lambda d: json.loads((d / "summary.json").read_text())["final_state_sha256"]
    assert summary(out) == summary(reference)
    assert (out / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()


def test_ctrl_c_during_compilation_is_one_line_and_exit_130(tmp_path):
    """Ctrl-C while XLA compiles used to print a traceback and then crash (SIGSEGV) on exit."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "magejax.cli"] + RUN[:-1] + ["--out", str(out)]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() and time.monotonic() < deadline:  # the step-0 row:
        time.sleep(0.05)                                                          # compilation is next
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("step ")]
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0] == ("magejax: interrupted; no checkpoint was written yet, so there is nothing to "
                        "resume: run the same command again with --overwrite")
    assert cli.main(RUN + ["--out", str(out), "--overwrite"]) == 0  # as the line says
    assert [r["env_step"] for r in metrics_io.read_metrics(out)] == [0, 0, 100, 100, 200, 200, 300, 300]


def test_ctrl_c_inside_a_write_waits_for_it_then_exits_130():
    """The console's handler leaves at once, except inside `deferred()` blocks (metrics rows,
    checkpoint saves, whole-file writes), which it lets finish first."""
    script = ("import os, signal\n"
              "from magejax.runs import interrupts\n"
              "interrupts.exit_on_interrupt()\n"
              "interrupts.set_message(lambda: 'how to go on')\n"
              "with interrupts.deferred():\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n"
              "    print('the write finished', flush=True)\n"
              "print('never reached', flush=True)\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 130
    assert p.stdout == "the write finished\n"
    assert p.stderr.strip() == "magejax: interrupted; how to go on"
