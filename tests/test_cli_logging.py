"""`magejax train` logging: --tensorboard writes every metric (mean over seeds and per seed) at each
evaluation, or exits 2 naming `pip install tensorboardX` when it is missing; on a terminal the
progress is a tqdm bar (rate, ETA, last return). Plain lines without a terminal: tests/test_cli.py."""
import io
import math
import struct

import numpy as np
import pytest

from magejax import cli
from magejax.cli import args as cli_args
from magejax.runs import metrics_io
from magejax.train import METRIC_NAMES

RUN = ["train", "--preset", "tiny", "--seeds", "2", "--steps", "200", "--eval-every", "100"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def read_scalars(logdir) -> dict:
    """{tag: {step: value}} from the TensorBoard event files in `logdir` (TFRecord of Event protos)."""
    from tensorboardX.proto import event_pb2

    scalars = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[i + 12:i + 12 + length])  # 8 length + 4 crc, then the data
            i += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


@pytest.fixture(scope="module")
def tensorboard_run(tmp_path_factory):
    pytest.importorskip("tensorboardX")
    out = tmp_path_factory.mktemp("runs") / "tb"
    with pytest.MonkeyPatch.context() as mp:
        terminal = FakeTerminal()
        mp.setattr("sys.stderr", terminal)
        assert cli.main(RUN + ["--tensorboard", "--out", str(out)]) == 0
    return out, terminal.getvalue()


def test_tensorboard_scalars_match_metrics(tensorboard_run):
    out, _ = tensorboard_run
    scalars = read_scalars(out / cli_args.TENSORBOARD_DIR)
    rows = metrics_io.read_metrics(out)
    for name in METRIC_NAMES:
        for step in (0, 100, 200):
            values = [r[name] for r in rows if r["env_step"] == step]
            if all(math.isnan(v) for v in values):  # absent quantities are not logged
                assert step not in scalars.get(f"{name}/mean", {})
                continue
            assert scalars[f"{name}/mean"][step] == pytest.approx(np.mean(values), rel=1e-6)
            for seed, v in enumerate(values):
                assert scalars[f"{name}/seed_{seed}"][step] == pytest.approx(v, rel=1e-6)
    assert set(scalars["eval_return/mean"]) == {0, 100, 200}
    assert set(scalars["critic_loss/mean"]) == {100, 200}  # no updates before the first chunk
    assert "model_heldout_nll/seed_1" in scalars
    assert metrics_io.read_run_settings(out)["tensorboard"] is True  # --resume keeps logging


def test_progress_bar_on_a_terminal(tensorboard_run):
    _, stderr = tensorboard_run
    final = stderr.split("\r")[-2] if stderr.endswith("\n") else stderr.split("\r")[-1]
    assert "\r" in stderr  # redrawn in place
    assert "200/200" in final and "env steps/s per seed" in final and "eval return" in final
    assert "<00:00" in final  # ETA
    assert "step 100/200 |" not in stderr  # not the plain per-chunk lines


def test_tensorboard_missing_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tensorboardX", None)  # import now fails
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        cli.main(RUN + ["--tensorboard", "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("magejax: error: --tensorboard")
    assert "pip install tensorboardX" in err
    assert not out.exists()
