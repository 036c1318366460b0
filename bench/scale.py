"""Cost of the sample size (issue 11): the 125M shape's forward passes alone against the same passes with
every block's sums accumulated as they run (stream.StreamSums), at growing token counts (`make bench-scale`).

    $ python -m bench.scale                          # 8 192, 65 536, 262 144 tokens; bench/scale.json + RESULTS-scale.md
    $ python -m bench.scale --tokens 8192 1048576    # any sizes (1 048 576: ~1 h on 2 cores)

Every (size, mode) runs in a fresh child process, so its peak resident memory (ru_maxrss) is its own:
  forward   extract_to_dir(store=False): the hooked passes, each block's batch converted to float16, nothing kept
  reduce    the same with sink=StreamSums.add: every linear statistic's sums of every block, held in memory
  spill     the same with the per-type and per-window sums in files (StreamSums(spill=...), bench/tmp/)
Tokens: a seeded Zipf stream over the GPT-2 vocabulary in windows of 512 (analysis.stats.simulate.zipf_stream;
frequent types short), random GPT-Neo 125M weights (timing does not depend on weight values); the design and
the widening subsets as the stats stage builds them from params.yaml. The two modes of one size run back to
back; colleagues' jobs share the cores, so read ratios, not seconds. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "bench"
SEQ_LEN = 512
SIZES = (8192, 65536, 262144)
TARGETS = {"time_per_token_spread": 0.15, "reduce_overhead": 0.15, "peak_rss_gb": 4.0}


def log(msg: str) -> None:
    print(f"[bench-scale {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def child(n_tokens: int, mode: str) -> dict:
    """One timed run (in its own process): returns what the parent records."""
    from analysis.models.architectures import architecture_of
    from analysis.models.extraction import extract_to_dir
    from analysis.params import load_params
    from analysis.stats.block import neuron_subsets
    from analysis.stats.pipeline import design_from_tokens
    from analysis.stats.simulate import zipf_stream
    from analysis.stats.stream import StreamSums
    from bench.run import extract_cfg, gpt_neo

    params = load_params()
    cfg, scfg, seed = extract_cfg(), params["stats"], int(params.get("seed", 0))
    n_seq = n_tokens // SEQ_LEN
    tok = zipf_stream(0, n_seq=n_seq, seq_len=SEQ_LEN, vocab=50257)
    ids = tok["token_id"].to_numpy(np.int64).reshape(n_seq, SEQ_LEN)
    model = gpt_neo("gpt-neo-125m")
    arch = architecture_of(model)
    sites = arch.site_names(model, cfg["site"])
    out = {"n_tokens": n_tokens, "mode": mode, "n_sequences": n_seq}
    sink, acc = None, None
    if mode in ("reduce", "spill"):
        t = time.perf_counter()
        d, keep = design_from_tokens(tok, scfg, seed)
        m = int(model.config.intermediate_size or 4 * model.config.hidden_size)
        widen = {b: np.flatnonzero(neuron_subsets(m, (seed, b), dip_neurons=scfg.get("dip_neurons"),
                                                  rank_neurons=scfg.get("rank_neurons"),
                                                  widen_neurons=scfg["nulls"].get("widen_neurons", 512))[2])
                 for b in range(len(sites))}
        spill = ROOT / "bench" / "tmp" / f"scale_spill_{n_tokens}" if mode == "spill" else None
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)
        acc = StreamSums(d, keep, SEQ_LEN, widen=widen, spill=spill)
        sink = acc.add
        out.update(design_s=round(time.perf_counter() - t, 2), n_types=int(d.n_types))
    t = time.perf_counter()
    extract_to_dir(model, ids, sites, None, retain=arch.retain(cfg["site"]), batch_size=cfg["batch_size"],
                   dtype=cfg["dtype"], fused=cfg["fused"], compute=cfg["compute"], threads=cfg["threads"],
                   progress=False, sink=sink, store=False)
    out["pass_s"] = round(time.perf_counter() - t, 2)
    if acc is not None:
        out["sums_gb"] = round(acc.nbytes() / 1024**3, 3)
        out["sums_disk_gb"] = round(acc.disk_bytes() / 1024**3, 3)
        t = time.perf_counter()
        acc.finish(0)
        out["finish_block_s"] = round(time.perf_counter() - t, 2)
        acc.close()
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out


def run_child(n_tokens: int, mode: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "bench.scale", "--child", str(n_tokens), mode], cwd=ROOT,
                       capture_output=True, text=True)
    if p.returncode:
        return {"n_tokens": n_tokens, "mode": mode, "error": (p.stderr or p.stdout)[-1500:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    by = {(r["n_tokens"], r["mode"]): r for r in runs if "error" not in r}
    sizes = sorted({n for n, _ in by})
    rows, per_token = [], []
    for n in sizes:
        f, r, sp = by.get((n, "forward")), by.get((n, "reduce")), by.get((n, "spill"))
        g = lambda run, key: run and run.get(key)  # noqa: E731
        row = {"n_tokens": n, "forward_s": g(f, "pass_s"), "reduce_s": g(r, "pass_s"), "spill_s": g(sp, "pass_s"),
               "n_types": g(r, "n_types") or g(sp, "n_types"), "sums_gb": g(r, "sums_gb"),
               "spill_disk_gb": g(sp, "sums_disk_gb"), "peak_rss_forward_gb": g(f, "peak_rss_gb"),
               "peak_rss_reduce_gb": g(r, "peak_rss_gb"), "peak_rss_spill_gb": g(sp, "peak_rss_gb")}
        for key, run in (("reduce", r), ("spill", sp)):
            if f and run:
                row[f"{key}_overhead"] = round(run["pass_s"] / f["pass_s"] - 1, 3)
        run = sp or r        # the spilled mode where it ran, as for the other targets
        if run:
            row["us_per_token"] = round(run["pass_s"] / n * 1e6, 1)
            per_token.append(run["pass_s"] / n)
        rows.append(row)
    s = {"rows": rows}
    if len(per_token) > 1:
        s["time_per_token_spread"] = round(max(per_token) / min(per_token) - 1, 3)
    # the targets are read on the spilled mode where it ran (the one meant to meet the memory bound)
    over = [r.get("spill_overhead", r.get("reduce_overhead")) for r in rows]
    if any(v is not None for v in over):
        s["reduce_overhead"] = max(v for v in over if v is not None)
    rss = [r["peak_rss_spill_gb"] or r["peak_rss_reduce_gb"] for r in rows]
    if any(rss):
        s["peak_rss_gb"] = max(v for v in rss if v)
    s["targets"] = {k: {"target": f"<= {v}", "value": s[k], "met": s[k] <= v} for k, v in TARGETS.items() if k in s}
    return s


def write_md(res: dict, path: Path) -> None:
    s = res["summary"]
    lines = ["# Sample size: forward passes with and without the streamed sums (`make bench-scale`)", "",
             "Written by `python -m bench.scale` (bench/scale.py) from `bench/scale.json`; do not edit by hand.",
             f"Run started {res['started']} on {res['machine']}; each row's three modes ran back to back in fresh "
             "processes (read ratios: other jobs share the cores).", "",
             "Modes: forward alone; + sums in memory; + sums spilled to files (bench/scale.py docstring). Peak "
             "RSS is each child's maximum over its whole run: with the sums it includes `finish` of block 0 (that "
             "block's sums read back and re-centred, as the stats stage would).", "",
             "| tokens | types | forward (s) | + sums in memory (s) | + sums spilled (s) | µs / token "
             "| sums in memory (GB) | spilled files (GB) | peak RSS forward / memory / spilled (GB) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    pct = lambda v: "n/a" if v is None else f"{100 * v:+.0f} %"  # noqa: E731
    for r in s["rows"]:
        lines.append(f"| {r['n_tokens']:,} | {r['n_types'] or 'n/a'} | {r['forward_s']} | {r['reduce_s']} "
                     f"({pct(r.get('reduce_overhead'))}) | {r['spill_s']} ({pct(r.get('spill_overhead'))}) | "
                     f"{r.get('us_per_token', 'n/a')} | {r['sums_gb']} | {r['spill_disk_gb']} | "
                     f"{r['peak_rss_forward_gb']} / {r['peak_rss_reduce_gb']} / {r['peak_rss_spill_gb']} |")
    lines += ["", "| target (issue 11) | value | |", "|---|---:|---|"]
    names = {"time_per_token_spread": "time per token, largest / smallest - 1",
             "reduce_overhead": "sums' cost over the forward passes alone (largest)",
             "peak_rss_gb": "peak resident memory with the sums (GB, largest)"}
    for k, t in s["targets"].items():
        lines.append(f"| {names[k]} {t['target']} | {t['value']} | {'**met**' if t['met'] else '**not met**'} |")
    errs = [r for r in res["runs"] if "error" in r]
    for r in errs:
        lines += ["", f"{r['n_tokens']} tokens, {r['mode']}: failed: `{r['error'].strip().splitlines()[-1]}`"]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="*", default=list(SIZES), help="sample sizes (multiples of 512)")
    ap.add_argument("--modes", nargs="*", default=["forward", "reduce", "spill"],
                    choices=["forward", "reduce", "spill"], help="which runs per size")
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1])))
        return 0
    bad = [n for n in args.tokens if n % SEQ_LEN or n <= 0]
    if bad:
        print(f"bench.scale: --tokens {bad}: each size must be a positive multiple of {SEQ_LEN}", file=sys.stderr)
        return 2
    import platform

    res = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "runs": []}
    for n in args.tokens:
        for mode in args.modes:
            r = run_child(n, mode)
            res["runs"].append(r)
            log(f"{n} tokens, {mode}: " + ("failed (bench/scale.json has the error)" if "error" in r
                                          else f"{r['pass_s']} s, peak {r['peak_rss_gb']} GB"))
            res["summary"] = summarise(res["runs"])
            (HERE / "scale.json").write_text(json.dumps(res, indent=2) + "\n")
    write_md(res, HERE / "RESULTS-scale.md")
    log(f"done: bench/scale.json, bench/RESULTS-scale.md {json.dumps(res['summary']['targets'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
