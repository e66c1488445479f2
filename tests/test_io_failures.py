"""Never lose a run: a failed write is one `magejax: error:` line naming what failed and the newest
good checkpoint (exit 1), and leaves whole evaluations only; a run directory that cannot hold a
run is refused (exit 2) before anything in it changes.

The disk fills up at a chosen write: the metrics file's raw writes are wrapped so that one of them
writes half its bytes and then raises ENOSPC, as a full disk does; a checkpoint save raises it."""
from __future__ import annotations

import errno
import json

import pytest

from magejax import cli
from magejax.runs import checkpoint, metrics_io

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


def _steps(run_dir) -> list[int]:
    return sorted(int(p.name) for p in (run_dir / checkpoint.CHECKPOINT_DIR).iterdir() if p.name.isdigit())


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
    assert _steps(out) == [100]
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
