"""bench/RESULTS.md from bench/results.json (written by bench.run; `python -m bench.report` rewrites it)."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _f(v, fmt="{:.2f}"):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return fmt.format(v)
    return str(v)


def write_report(res: dict, path: Path) -> None:
    m = res.get("machine", {})
    g = res.get
    tg = res.get("targets", {})

    def met(key):
        t = tg.get(key)
        return "n/a (not measured)" if t is None else ("**met**" if t["met"] else "**not met**")

    lines = [
        "# Benchmarks (`make bench`)",
        "",
        "Written by `python -m bench.run` (bench/run.py) from `bench/results.json`; do not edit by hand.",
        "",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('ram_gb')} GB RAM, GPU: {m.get('gpu') or 'none'}; "
        f"bfloat16 instructions: {', '.join(m.get('bf16_instructions') or []) or 'none'}. "
        f"Python {m.get('python')}, torch {m.get('torch')} ({m.get('torch_threads')} threads), transformers "
        f"{m.get('transformers')}, numpy {m.get('numpy')}. Run started {g('started')}, {g('total_s')} s in all; "
        f"load average {g('load_average_start')} at the start, {g('load_average_end')} at the end "
        "(other jobs shared the cores: absolute seconds are noisy, the ratios were measured interleaved in the "
        f"same run, best of {g('repeats')}). Matrix products measured in this run: {g('matmul_fp32_gflops')} "
        f"GFLOP/s float32, {g('matmul_bf16_gflops')} GFLOP/s bfloat16.",
        "",
        f"Models: random-weight GPT-Neo of the exact 125M and 1.3B shapes; 16 x 512 = 8192 tokens "
        f"({g('tokens')}). Extraction settings (params.yaml `extract`): {g('extract_settings')}.",
        "",
        "## Targets",
        "",
        "| metric | value | target | |",
        "|---|---|---|---|",
        f"| `extract_over_forward_125m` | {_f(g('extract_over_forward_125m'), '{:.3f}')} | <= 1.05 | {met('extract_over_forward_125m')} |",
        f"| `peak_rss_1p3b_gb` | {_f(g('peak_rss_1p3b_gb'))} | < 1.3 x {_f(g('weights_fp32_1p3b_gb'))} + 1 = {_f(g('peak_rss_1p3b_target_gb'))} | {met('peak_rss_1p3b_gb')} |",
        f"| `stats_speedup_vs_statsmodels` | {_f(g('stats_speedup_vs_statsmodels'), '{:.0f}')} x | >= 100 | {met('stats_speedup_vs_statsmodels')} |",
        f"| `repro_noop_s` | {_f(g('repro_noop_s'))} s | <= 5 s | {met('repro_noop_s')} |",
        f"| `stats_125m_s` | {_f(g('stats_125m_s'))} s | <= 10 s | {met('stats_125m_s')} |",
        f"| `stats_1p3b_s` | {_f(g('stats_1p3b_s'), '{:.1f}')} s | <= 60 s | {met('stats_1p3b_s')} |",
        f"| `shards_dask_over_inprocess_64` | {_f(g('shards_dask_over_inprocess_64'))} x | <= 1.3 | {met('shards_dask_over_inprocess_64')} |",
        f"| `merge_128_shards_s` | {_f(g('merge_128_shards_s'), '{:.2f}')} s | <= 5 s | {met('merge_128_shards_s')} |",
        "",
        "## Figures",
        "",
        "| metric | value | what |",
        "|---|---|---|",
        f"| `extract_125m_s` | {_f(g('extract_125m_s'))} s | pipeline extraction (hooks on every block, float16 files written) |",
        f"| `forward_125m_s` | {_f(g('forward_125m_s'))} s | plain base-model forward, same kernels and batch, no hooks |",
        f"| `forward_125m_matmul_floor_s` | {_f(g('forward_125m_matmul_floor_s'))} s | the forward's matrix-product FLOPs at this run's float32 rate |",
        f"| `forward_125m_eager_s` / `extract_125m_eager_s` | {_f(g('forward_125m_eager_s'))} / {_f(g('extract_125m_eager_s'))} s | transformers' eager kernels (`extract.fused: false`); ratio {_f(g('extract_over_forward_125m_eager'), '{:.3f}')} |",
        f"| `forward_125m_fused_s` / `extract_125m_fused_s` | {_f(g('forward_125m_fused_s'))} / {_f(g('extract_125m_fused_s'))} s | fused kernels (`extract.fused: true`) |",
        f"| `speedup_fused_vs_eager_extract` | {_f(g('speedup_fused_vs_eager_extract'), '{:.2f}')} x | fused attention + GELU (`extract.fused: true`) |",
        f"| `max_abs_r_change_fused` | {_f(g('max_abs_r_change_fused'), '{:.1e}')} | largest change of any per-neuron r(length), fused vs eager (max activation change {_f(g('max_abs_activation_change_fused'), '{:.1e}')}, share of float16 values changed {_f(g('share_values_changed_fused_fp16'), '{:.1e}')}) |",
        f"| `naive_125m_s` | {_f(g('naive_125m_s'))} s | the study's way: full LM with head, one 16 x 512 batch, all blocks kept in float32 RAM ({_f(g('naive_over_extract_125m'))} x the extraction) |",
        f"| `extract_1p3b_s` | {_f(g('extract_1p3b_s'), '{:.1f}')} s | 1.3B extraction ({_f(g('activations_1p3b_gb'))} GB of float16 activations written; model build {_f(g('load_1p3b_s'), '{:.1f}')} s not included) |",
        f"| `peak_rss_1p3b_gb` | {_f(g('peak_rss_1p3b_gb'))} GB | peak resident memory of the 1.3B child process (wait4 rusage), build + extraction |",
        f"| `stats_125m_s` | {_f(g('stats_125m_s'))} s | every statistic of the 125M shape, all 12 blocks x 3072 neurons (nulls, widening, ranks and dip on their subsets, block summaries, claims), `stats` settings {g('stats_settings')}; {_f(g('stats_125m_one_worker_s'))} s with `workers: 1` ({_f(g('speedup_workers_125m'))} x); data: {g('stats_data')} |",
        f"| `stats_1p3b_s` | {_f(g('stats_1p3b_s'), '{:.1f}')} s | the same for the 1.3B shape, all 24 blocks x 8192 neurons computed ({_f(g('stats_1p3b_block_s'))} s per block) |",
        f"| `stats_speedup_vs_statsmodels` | {_f(g('stats_speedup_vs_statsmodels'), '{:.0f}')} x | per-neuron statsmodels OLS loop ({_f(g('statsmodels_ols_loop_per_neuron_ms'), '{:.2f}')} ms/neuron: r and p with length, cluster-robust p, both partial correlations, r with the next length; {g('stats_loop_neurons_timed')} neurons timed, extrapolated) vs the same statistics vectorised, without nulls as the loop ({_f(g('stats_linear_block_125m_s'), '{:.3f}')} s per 125M block; {_f(g('stats_linear_with_nulls_block_125m_s'), '{:.3f}')} s with the 500 type-level permutations and the widening) |",
        f"| `repro_noop_s` | {_f(g('repro_noop_s'))} s | `dvc repro` with nothing changed, best of {g('repro_noop_all_s')}: {g('repro_noop_where')} |",
        f"| `shards_dask_over_inprocess_64` | {_f(g('shards_64_dask_s'), '{:.2f}')} / {_f(g('shards_64_inprocess_s'), '{:.2f}')} s | the linear statistics' sums of one block from 64 shards (`stats.shards`), on a 2-worker Dask LocalCluster vs in-process, the same bytes: {g('shards_64_config')}; each shard's activations travel to a worker and its partial sums back (no extraction in the task) |",
        f"| `merge_128_shards_s` | {_f(g('merge_128_shards_s'), '{:.2f}')} s | merging 128 shard results and re-centring: {g('merge_128_config')} |",
        "",
        "## Optional faster modes (125M extraction, speed-up against the default measured next to it)",
        "",
        f"- bfloat16 autocast (`extract.compute: bfloat16`): {_f(g('extract_125m_bf16_s'))} s, "
        f"speed-up {_f(g('speedup_bf16'), '{:.2f}')} x; largest change in any per-neuron r(length) "
        f"`max_abs_r_change_bf16` = {_f(g('max_abs_r_change_bf16'), '{:.4f}')} (median relative activation change "
        f"{_f(g('median_rel_activation_change_bf16'), '{:.3f}')} of a neuron's SD). Against the chance spread of r "
        "(1/sqrt(8191) = 0.011) this is what a user trades for the speed.",
        f"- batch size and threads (speed-up over the default; > 1 is faster): {g('speedup_modes_vs_default')}.",
        "",
    ]
    notes = HERE / "notes.md"  # hand-written analysis of the figures (profiles, causes, what was changed)
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    if res.get("errors"):
        lines += ["## Parts that failed in this run", ""] + [f"- {k}: {v}" for k, v in res["errors"].items()] + [""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    write_report(json.loads((HERE / "results.json").read_text()), HERE / "RESULTS.md")
