"""Where a compiled update's time goes: a per-operation profile from JAX's own profiler.

`jax.profiler.trace(..., create_perfetto_trace=True)` writes a Chrome-trace JSON in which XLA's
CPU runtime records one event per executed thunk, named after its HLO instruction. Joining those
events with the optimised HLO text gives the time of every instruction; each is put in a category:
a matrix product by form and operand type (a fusion that wraps one counts as that product), other
fusions (elementwise work, reductions), or its opcode. The FLOPs of each product category give
its achieved GFLOP/s, so a product form that XLA runs slowly shows up directly.

Forms: NN is x·W (the forward product), NT is g·Wᵀ (the input gradient), TN is xᵀ·g (the weight
gradient), judged from the contracting dimensions after the batch dimensions are removed.
"""
from __future__ import annotations

import glob
import gzip
import json
import re
import tempfile
import time

import jax
import numpy as np

# Thunks that only hold other thunks (their events would count their children twice) or move no data.
CONTAINERS = {"conditional", "while", "call", "tuple", "get-tuple-element", "parameter", "constant", "bitcast"}
_INSTR = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = ([a-z0-9]+)\[([0-9,]*)\][^ ]* ([\w\-]+)\((.*)$")
_COMP = re.compile(r"^(?:ENTRY )?%([\w.\-]+) \((.*)\) -> .* \{$")
_PARAM = re.compile(r"([\w.\-]+): ([a-z0-9]+)\[([0-9,]*)\]")


def _dims(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _attr(rest: str, name: str) -> list[int]:
    m = re.search(name + r"=\{([0-9,]*)\}", rest)
    return _dims(m.group(1)) if m else []


def dot_form(lhs_rank: int, rhs_rank: int, rest: str) -> str:
    """'NN' | 'NT' | 'TN' | 'TT': a dot's form, from its dimension numbers (`rest` of its HLO line)."""
    lb, lc, rb, rc = (_attr(rest, n) for n in ("lhs_batch_dims", "lhs_contracting_dims",
                                               "rhs_batch_dims", "rhs_contracting_dims"))
    lhs_free = [d for d in range(lhs_rank) if d not in lb]
    rhs_free = [d for d in range(rhs_rank) if d not in rb]
    lhs_n = bool(lc) and lc[-1] == lhs_free[-1]  # contracts its last non-batch dim: x·…
    rhs_n = bool(rc) and rc[0] == rhs_free[0]    # contracts its first non-batch dim: …·W
    return ("N" if lhs_n else "T") + ("N" if rhs_n else "T")


def classify_instructions(hlo_text: str) -> dict[str, tuple[str, float, str]]:
    """Optimised HLO text -> {instruction name: (category, FLOPs, the JAX op it came from)} for
    every instruction that runs as a thunk. A product's category names its form and its operand
    and output types, e.g. "product TN, bf16 x bf16 -> bf16"."""
    shapes: dict[str, tuple[str, list[int]]] = {}
    comps: dict[str, list[tuple]] = {}
    origins: dict[str, str] = {}
    current = None
    for line in hlo_text.splitlines():
        if m := _COMP.match(line):
            current = comps.setdefault(m.group(1), [])
            for p in _PARAM.finditer(m.group(2)):
                shapes[p.group(1)] = (p.group(2), _dims(p.group(3)))
        elif m := _INSTR.match(line):
            name, dtype, dims, opcode, rest = m.groups()
            shapes[name] = (dtype, _dims(dims))
            if current is not None:
                current.append((name, opcode, rest, dtype, _dims(dims)))
            origin = re.search(r'op_name="([^"]*)"', rest)  # XLA-made ops (converts) have none
            origins[name] = origin.group(1) if origin else f"(XLA: {re.sub(r'[.0-9]+$', '', name)})"

    def product(rest: str, out_type: str, out_dims: list[int]) -> tuple[str, float]:
        operands = re.findall(r"%([\w.\-]+)", rest.split(")")[0])[:2]
        (lt, ld), (rt, rd) = shapes[operands[0]], shapes[operands[1]]
        k = int(np.prod([ld[d] for d in _attr(rest, "lhs_contracting_dims")]))
        return (f"product {dot_form(len(ld), len(rd), rest)}, {lt} x {rt} -> {out_type}",
                2.0 * k * float(np.prod(out_dims)))

    fused = {c for body in comps.values() for _, op, rest, _, _ in body if op == "fusion"
             for c in re.findall(r"calls=%([\w.\-]+)", rest)}
    out = {}  # the instructions that run as thunks: those outside fused computations
    for comp, body in comps.items():
        if comp in fused:
            continue
        for name, opcode, rest, dtype, dims in body:
            if opcode == "dot":
                out[name] = product(rest, dtype, dims) + (origins[name],)
            elif opcode == "fusion":
                called = re.search(r"calls=%([\w.\-]+)", rest)
                inner = [product(r, t, d) for _, op, r, t, d in comps.get(called.group(1) if called else "", [])
                         if op == "dot"]
                if inner:  # a fusion around one product (YNNPACK's, or a dot with its converts)
                    out[name] = (inner[0][0], sum(f for _, f in inner), origins[name])
                else:
                    out[name] = ("other fusions (elementwise, reductions)", 0.0, origins[name])
            elif opcode not in CONTAINERS:
                out[name] = (f"{opcode}", 0.0, origins[name])
    return out


def thunk_times(events: list[dict], names: set[str], reps: int) -> dict[str, tuple[float, float]]:
    """Trace events -> {instruction: (ms per call, runs per call)}.

    A thunk's event covers its dispatch; an asynchronous one (a DotThunk runs on the intra-op
    pool) finishes at its "end: <name>" event, so its span runs from its start to that end.
    The median span over the calls is robust to an end event the trace lost."""
    starts: dict[str, list[dict]] = {}
    ends: dict[str, list[dict]] = {}
    for e in events:
        if e.get("ph") != "X":
            continue
        op = (e.get("args") or {}).get("hlo_op")
        if op in names:
            starts.setdefault(op, []).append(e)
        elif e["name"].startswith("end: ") and e["name"][5:] in names:
            ends.setdefault(e["name"][5:], []).append(e)
    out = {}
    for op, ss in starts.items():
        ss.sort(key=lambda e: e["ts"])
        es = sorted(ends.get(op, []), key=lambda e: e["ts"])
        spans = []
        for i, s in enumerate(ss):
            limit = ss[i + 1]["ts"] if i + 1 < len(ss) else float("inf")
            end = next((e for e in es if s["ts"] <= e["ts"] < limit), None)
            spans.append(max(s["dur"], end["ts"] + end["dur"] - s["ts"]) if end else s["dur"])
        runs = len(ss) / reps
        out[op] = (float(np.median(spans)) / 1e3 * runs, runs)  # µs -> ms per call
    return out


def profile_compiled(compiled, args: tuple, reps: int, top: int = 10) -> dict:
    """Run `compiled(*args)` `reps` times under the profiler -> time per category per call.

    Returns {"wall_ms": median ms per call, "thunk_ms": summed thunk ms per call,
    "categories": {category: {"ms", "share" (of thunk time), "gflops" (products only)}},
    "top_non_products": the `top` costliest other instructions: [ms, the JAX op they came from]}.
    Thunk time can exceed wall time when XLA runs independent thunks on both cores."""
    jax.block_until_ready(compiled(*args))
    classes = classify_instructions(compiled.as_text())
    walls = []
    with tempfile.TemporaryDirectory() as logdir:
        with jax.profiler.trace(logdir, create_perfetto_trace=True):
            for _ in range(reps):
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(*args))
                walls.append(time.perf_counter() - t0)
        path = glob.glob(f"{logdir}/**/perfetto_trace.json.gz", recursive=True)[0]
        trace = json.load(gzip.open(path))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    times: dict[str, float] = {}
    flops: dict[str, float] = {}
    others: dict[str, float] = {}
    for op, (per_call, runs) in thunk_times(events, set(classes), reps).items():
        cat, f, origin = classes[op]
        times[cat] = times.get(cat, 0.0) + per_call
        flops[cat] = flops.get(cat, 0.0) + f * runs
        if not cat.startswith("product"):
            others[origin] = others.get(origin, 0.0) + per_call
    if not times:
        raise RuntimeError("the profiler trace has no thunk events of this program (XLA CPU runtime changed?)")
    total = sum(times.values())
    cats = {c: {"ms": t, "share": t / total,
                **({"gflops": flops[c] / (t / 1e3) / 1e9} if flops[c] else {})}
            for c, t in sorted(times.items(), key=lambda kv: -kv[1])}
    top_others = sorted(([ms, origin] for origin, ms in others.items()), reverse=True)[:top]
    return {"wall_ms": 1e3 * float(np.median(walls)), "thunk_ms": total, "categories": cats,
            "top_non_products": top_others}


def dot_census(hlo_text: str) -> dict:
    """'lhs x rhs -> out' operand and output types of the dots in optimised HLO text -> the number
    of thunks with such products and their share of the product FLOPs."""
    census: dict[str, dict] = {}
    for category, flops, _ in classify_instructions(hlo_text).values():
        if category.startswith("product"):
            entry = census.setdefault(category.split(", ", 1)[1], {"dots": 0, "flops": 0.0})
            entry["dots"] += 1
            entry["flops"] += flops
    total = sum(e["flops"] for e in census.values()) or 1.0
    for e in census.values():
        e["flop_share"] = e["flops"] / total
    return census
