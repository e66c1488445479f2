"""benchmarks/bench.py --quick runs, writes one JSON report with its header, and measures sane numbers."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks" / "bench.py"
ONLY = ["matmul_peak", "update_step", "precision", "model_train_step", "hlo_check", "loop_throughput", "peak_memory"]
NULLABLE = {"device_peak_bytes", "device_bytes_limit"}  # CPU backends report no device memory


def _numbers(tree, path=""):
    """Every (path, value) leaf of a JSON tree whose value is a number or null (bools excluded)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _numbers(v, f"{path}[{i}]")
    elif tree is None or (isinstance(tree, (int, float)) and not isinstance(tree, bool)):
        yield path, tree


def test_quick_bench_writes_a_sane_report(tmp_path):
    cmd = [sys.executable, str(BENCH), "--quick", "--out", str(tmp_path), "--only", *ONLY,
           "--sizes", "pendulum", "--algos", "td3", "mage"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    files = list(tmp_path.glob("bench-*.json"))
    assert len(files) == 1, files
    report = json.loads(files[0].read_text())

    header = report["header"]
    for field in ("hostname", "platform", "cpu_model", "cpu_count"):
        assert field in header["machine"], field
    assert header["machine"]["cpu_count"] > 0
    for lib in ("jax", "jaxlib", "flax", "optax"):
        assert header["versions"][lib], lib
    assert header["jax"]["default_backend"] and header["jax"]["device_kind"]
    assert header["date_utc"].endswith("Z")
    assert "commit" in header["git"]
    assert "cost_analysis" in report["flops_source"]

    results = report["results"]
    assert set(results) == set(ONLY)
    for name, value in _numbers(results):
        if value is None:
            assert name.rsplit(".", 1)[-1] in NULLABLE, f"{name} is null"
        else:
            assert math.isfinite(value) and value > 0, f"{name} = {value}"

    update = results["update_step"]["pendulum"]
    assert set(update["algos"]) == {"td3", "mage"}
    assert update["ratios"]["mage/td3"] > 0
    mage = update["algos"]["mage"]
    assert mage["ms_per_update"]["n"] >= 3
    assert mage["flops"]["per_update_mean"] > 0 and 0 < mage["fraction_of_matmul_peak"]
    loop = results["loop_throughput"]["sizes"]
    assert set(loop) == {"pendulum"} and set(loop["pendulum"]["algos"]) == {"td3", "mage"}
    for a in loop["pendulum"]["algos"].values():
        # Without its evaluation (or with one per paper interval) a chunk can only be faster.
        assert a["train_env_steps_per_s"] >= a["env_steps_per_s"]
        assert a["env_steps_per_s"] <= a["paper_schedule_env_steps_per_s"] <= a["train_env_steps_per_s"]

    hlo = results["hlo_check"]["pendulum"]
    # One forward model pass for Dyna's target, forward + one backward to the action for MAGE's.
    assert 0.9 < hlo["dyna_model_part_in_model_forwards"] < 1.1
    assert 1.5 < hlo["mage_model_part_in_model_forwards"] < 2.5

    precision = results["precision"]["pendulum"]
    assert set(precision["ms_per_update"]) == {"f32", "bf16"} and isinstance(precision["meets_target"], bool)
    census = precision["bf16_dot_census"]
    assert any(k.startswith("bf16 x bf16") for k in census)  # the bf16 update has bf16 products
    assert math.isclose(sum(e["flop_share"] for e in census.values()), 1.0, rel_tol=1e-9)
    for prec, prof in precision["profile"].items():  # the per-operation profile of each update
        cats = prof["categories"]
        assert math.isclose(sum(c["share"] for c in cats.values()), 1.0, rel_tol=1e-9)
        assert all(c["ms"] > 0 for c in cats.values()) and prof["wall_ms"] > 0
        products = [k for k in cats if k.startswith("product")]
        assert products and all(cats[k]["gflops"] > 0 for k in products)
        assert any("bf16 x bf16" in k for k in products) == (prec == "bf16"), (prec, products)

    assert "update_step" in proc.stdout and "f32/bf16" in proc.stdout and "wrote" in proc.stdout


def test_profile_classifies_each_product_form_and_times_it():
    """bench_profile: the three dense-layer product forms are named by their dimension numbers,
    and a profiled program's categories carry its products' FLOPs."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_profile import classify_instructions, dot_form, profile_compiled

    assert dot_form(2, 2, "lhs_contracting_dims={1}, rhs_contracting_dims={0}") == "NN"
    assert dot_form(2, 2, "lhs_contracting_dims={1}, rhs_contracting_dims={1}") == "NT"
    assert dot_form(2, 2, "lhs_contracting_dims={0}, rhs_contracting_dims={0}") == "TN"
    batched = "lhs_batch_dims={0}, lhs_contracting_dims={1}, rhs_batch_dims={0}, rhs_contracting_dims={1}"
    assert dot_form(3, 3, batched) == "TN"

    x, w = jnp.ones((256, 64)), jnp.ones((64, 32))
    loss = lambda w, x: jnp.tanh(x @ w).sum()
    grad = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(w, x).compile()
    classes = classify_instructions(grad.as_text())
    products = {c for c, _, _ in classes.values() if c.startswith("product")}
    assert products == {f"product {form}, f32 x f32 -> f32" for form in ("NN", "NT", "TN")}, products
    total = sum(f for c, f, _ in classes.values() if c.startswith("product"))
    assert total == 3 * 2 * 256 * 64 * 32  # forward x·W, backward g·Wᵀ and xᵀ·g
    prof = profile_compiled(grad, (w, x), reps=3)
    assert sum(v.get("gflops", 0) * v["ms"] / 1e3 * 1e9 for v in prof["categories"].values()) == \
        pytest.approx(total, rel=1e-6)
