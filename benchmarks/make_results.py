"""Rebuild benchmarks/RESULTS.md from the JSON files in benchmarks/results/.

    python benchmarks/make_results.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
RES = HERE / "results"


def _load(name):
    p = RES / name
    return json.loads(p.read_text()) if p.exists() else None


def compare_table(name: str, title: str) -> list[str]:
    d = _load(name)
    if not d:
        return []
    a = d["args"]
    if "summary" not in d:  # an interrupted run: only the rows so far
        return []
    cont = f", lr {a['lr']}, γ {a.get('gamma')}, hidden {a.get('hidden')}, grad clip {a.get('grad_clip')}" \
        if "continuous" in a["dataset"] or "mamujoco" in a["dataset"] else ""
    out = [f"### {title}", "",
           f"`{a['dataset']}` (data return {d['data_return']['mean']:.3f}); {a['steps']} gradient steps, "
           f"batch {a['batch']} {'episodes (GRU)' if a['rnn'] else 'transitions (MLP)'}, α = {a['alpha']}, "
           f"τ = {a['tau']}{cont}; deterministic evaluation every {a['eval_every']} steps on {a['eval_episodes']} "
           f"episodes; seeds {a['seeds']}. Normalised score, mean ± std over seeds.", "",
           "| method | final | best |", "|---|---|---|"]
    for m, s in d["summary"].items():
        out.append(f"| {m} | {s['final_mean']:.1f} ± {s['final_std']:.1f} | {s['best_mean']:.1f} ± {s['best_std']:.1f} |")
    out.append("")
    return out


def throughput_table(name: str = "throughput.json") -> list[str]:
    d = _load(name)
    if not d:
        return []
    out = ["### Throughput (this 2-core machine)", "",
           "| shape | n | torch threads | bare torch steps/s | RLlib learner steps/s | RLlib overhead | transitions/s | "
           "learner sample / update time (s) | vs reference |", "|---|---|---|---|---|---|---|---|---|"]
    for r in d["in_process"]:
        ref = f"{r['speedup_vs_reference']:.1f}×" if r.get("speedup_vs_reference") else ""
        out.append(f"| {r['shape']} | {r['n_agents']} | {r['threads']} | {r['bare_steps_per_s']:.2f} | "
                   f"{r['rllib_steps_per_s']:.2f} | {100 * r['rllib_overhead']:.0f}% | {r['transitions_per_s']:.0f} | "
                   f"{r['sample_time_s']:.3f} / {r['update_time_s']:.3f} | {ref} |")
    out.append("")
    for k, v in (d.get("through_ray") or {}).items():
        b = v.get("behaviour_pretrain") or {}
        beta = (f", β {'from cache' if b.get('cached') else 'pre-trained in ' + str(b.get('seconds')) + ' s (' + str(b.get('steps')) + ' BC steps; cached for later runs)'}"
                if b else "")
        out.append(f"- Through Ray, {k}: `build_algo()` {v['setup_s']} s (ray.data read {v['data_read_s']} s{beta}), "
                   f"first gradient step finished {v['first_update_after_train_call_s']} s after `train()`, "
                   f"steady state {v['steps_per_s']} steps/s (learner sampling {v['sample_time_s']} s vs update "
                   f"{v['update_time_s']} s of a {v['iteration_wall_s']} s iteration).")
    out.append("")
    return out


def throughput_continuous_table(name: str = "throughput_continuous.json") -> list[str]:
    d = _load(name)
    if not d:
        return []
    out = [f"### Continuous throughput (this 2-core machine, {d['threads']} torch thread(s); a step = one critic step, "
           "actors every 5th)", "",
           "| shape | variant | batch | bare torch steps/s | RLlib learner steps/s | RLlib overhead | vs reference |",
           "|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        ref = f"{r['speedup_vs_reference']:.1f}× (ref {r['reference_steps_per_s']})" if r.get("speedup_vs_reference") else ""
        out.append(f"| {r['shape']} | {r['variant']} | {r['batch']} | {r['bare_steps_per_s']:.2f} | "
                   f"{r['learner_steps_per_s']:.2f} | {100 * r['rllib_overhead']:.0f}% | {ref} |")
    out.append("")
    return out


def scaleout_table() -> list[str]:
    d = _load("scaleout.json")
    if not d:
        return []
    out = ["### One learner vs two DDP learners", "", f"`{d['args']['dataset']}`, same total batch "
           f"({d['args']['batch']} transitions), normalised score at each evaluation:", ""]
    for r in d["runs"]:
        out.append(f"- {r['num_learners']} learner(s), seed {r['seed']}: "
                   + ", ".join(f"{s:.1f}@{st}" for st, s in r["curve"]) + f" ({r['seconds']} s)")
    out.append("")
    return out


# the n-scaling families: results prefix (dirs <prefix>, <prefix>_a<α>, <prefix>_macqlg), figure prefix, title
SCALING_FAMILIES = (
    ("equal_line_slot_distance", "equal_line_slot_distance",
     "Equal_Line, decomposable family (`benchmarks/run_slot_distance_sweep.sh`): the advantage as the team grows"),
    ("equal_line_slot_distance_t25", "equal_line_slot_distance_t25",
     "Equal_Line, decomposable family, target copies every 25 steps (the library default): divergence at n ≥ 8"),
    ("equal_line_scaling", "equal_line",
     "Equal_Line, reference reward (`benchmarks/equal_line_scaling.py`): the advantage as the team grows"),
)
FIGS = HERE / "figures"
COLORS = {"cfcql": "tab:red", "macql": "tab:blue", "macql-u": "tab:cyan", "bc": "tab:green", "none": "tab:gray"}
LABELS = {"cfcql": "CFCQL", "macql": "MACQL", "macql-u": "MACQL, uniform joint draws", "bc": "BC", "none": "offline QMIX"}
USES_ALPHA = ("cfcql", "macql", "macql-u")


def _scaling_runs(prefix: str = "equal_line_scaling") -> list[dict]:
    """Every finished run of every α of one family; a run's α is its ``args.alpha`` (None for BC /
    offline QMIX)."""
    runs = []
    family = re.compile(re.escape(prefix) + r"(_a[0-9.]+|_macqlg)?")
    for d in sorted(p for p in RES.glob(f"{prefix}*") if family.fullmatch(p.name)):
        for f in sorted(d.glob("n*_s*.json")):
            r = json.loads(f.read_text())
            card = Path(r["dataset"]) / "card.json"
            n_actions = json.loads(card.read_text())["spec"]["n_actions"] if card.exists() else None
            sampled = n_actions is None or n_actions ** r["n"] > int(r["args"].get("joint_samples", 100))
            if r["method"] == "macql" and sampled and not r["args"].get("joint_greedy_stratum", 0):
                r["method"] = "macql-u"  # the sampled joint LSE without the greedy stratum (runs before 2026-12-02)
            r["alpha"] = float(r["args"]["alpha"]) if r["method"] in USES_ALPHA else None
            runs.append(r)
    return runs


def _mean_std(xs):
    import numpy as np

    return float(np.mean(xs)), float(np.std(xs))


def _card_data_score(card_file: Path) -> float:
    """The normalised score of a dataset's own return, from its card (NaN when the data is not here: it is
    made by the benchmark scripts, not kept in git)."""
    if not card_file.exists():
        return float("nan")
    card = json.loads(card_file.read_text())
    refs = card["reference_returns"]
    return 100 * (card["return"]["mean"] - refs["random"]) / (refs["expert"] - refs["random"])


def _norm(r) -> float:
    refs = r["reference_returns"]
    return 100.0 * (r["data_return"]["mean"] - refs["random"]) / (refs["expert"] - refs["random"])


def chosen_alpha(runs: list[dict]) -> dict:
    """(n, method) -> the α whose seed-0 final score is highest (the one α sweep per cell), for the
    value methods; BC / offline QMIX have none."""
    out = {}
    for r in runs:
        if r["alpha"] is None or r["seed"] != 0:
            continue
        k = (r["n"], r["method"])
        if k not in out or r["final"] > out[k][1]:
            out[k] = (r["alpha"], r["final"])
    return {k: v[0] for k, v in out.items()}


def scaling_section(runs: list[dict], fig_prefix: str = "equal_line",
                    title: str = "Equal_Line: the advantage as the team grows") -> list[str]:
    """One family's n-scaling tables and figures (benchmarks/figures/<fig_prefix>_*.png)."""
    if not runs:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGS.mkdir(exist_ok=True)
    ns = sorted({r["n"] for r in runs})
    methods = [m for m in COLORS if any(r["method"] == m for r in runs)]
    alphas = sorted({r["alpha"] for r in runs if r["alpha"] is not None})
    best_alpha = chosen_alpha(runs)
    cell = {}
    for r in runs:
        if r["alpha"] is None or best_alpha.get((r["n"], r["method"])) == r["alpha"]:
            cell.setdefault((r["n"], r["method"]), []).append(r)
    a = runs[0]["args"]
    data = {r["n"]: r for r in runs}
    reward = runs[0].get("reward", "min_spacing")
    out = [f"## {title}", "",
           f"Data: `{runs[0]['policy']}`, reward `{reward}` (docs/DATASETS_DESIGN.md), 1 000 episodes per n, episode limit 50 (a true terminal, as in the reference), "
           f"made with the project's collector. Every method: {a['steps']} gradient steps, batch {a['batch']} "
           f"transitions (MLP agents, {a.get('mixer', 'qmix').upper()} mixer), lr {a['lr']}, γ {a['gamma']}, τ = {a['tau']}, "
           f"hard target copies every {a.get('target_update', 25)} steps; greedy decentralised "
           f"evaluation every {a['eval_every']} steps on {a['eval_episodes']} episodes. Normalised score "
           "100·(R − random)/(expert − random) with the card's scripted references. `final` is the last evaluation, "
           "`best` the best one.", "",
           f"**The α sweep (seed 0).** CFCQL and MACQL ran at α ∈ {{{', '.join(f'{x:g}' for x in alphas)}}} where "
           "listed (every point is shown; an empty cell was not run). Per (n, method) the α with the highest seed-0 "
           "final score is the one the seeds below use.", "",
           "| n | method | " + " | ".join(f"α = {x:g} final (best)" for x in alphas) + " |",
           "|---|---|" + "---|" * len(alphas)]
    for n in ns:
        for m in USES_ALPHA:
            row, any_run = f"| {n} | {LABELS[m]} |", False
            for x in alphas:
                rs = [r for r in runs if r["n"] == n and r["method"] == m and r["alpha"] == x and r["seed"] == 0]
                if rs:
                    any_run = True
                    mark = "**" if best_alpha.get((n, m)) == x else ""
                    row += f" {mark}{rs[0]['final']:.1f}{mark} ({rs[0]['best']:.1f}) |"
                else:
                    row += " |"
            if any_run:
                out.append(row)
    out += ["", "**At the chosen α**, mean ± std over seeds (in brackets: the number of seeds and, "
            "for a value method, its α):", "",
            f"![n-scaling](figures/{fig_prefix}_scaling.png)", "",
            "| n | data | " + " | ".join(f"{LABELS[m]} final | {LABELS[m]} best" for m in methods) + " |",
            "|---|---|" + "---|---|" * len(methods)]
    for n in ns:
        row = f"| {n} | {_norm(data[n]):.1f} |"
        for m in methods:
            rs = cell.get((n, m), [])
            if not rs:
                row += " | |"
                continue
            fm, fs = _mean_std([r["final"] for r in rs])
            bm, bs = _mean_std([r["best"] for r in rs])
            tag = f" α {best_alpha[(n, m)]:g}" if (n, m) in best_alpha else ""
            row += f" {fm:.1f} ± {fs:.1f} ({len(rs)}{tag}) | {bm:.1f} ± {bs:.1f} |"
        out.append(row)
    out.append("")
    if any(m in methods for m in ("cfcql",)) and any(m in methods for m in ("macql", "macql-u")):
        other = "macql" if "macql" in methods else "macql-u"
        out += [f"**CFCQL − {LABELS[other]} at each one's chosen α** (final scores; σ is the pooled std of the two "
                "groups of seeds, √((s₁² + s₂²)/2)):", "",
                "| n | CFCQL | " + LABELS[other] + " | Δ | pooled σ | Δ / σ |", "|---|---|---|---|---|---|"]
        for n in ns:
            a_, b_ = cell.get((n, "cfcql"), []), cell.get((n, other), [])
            if len(a_) < 2 or len(b_) < 2:
                continue
            (ma, sa), (mb, sb) = _mean_std([r["final"] for r in a_]), _mean_std([r["final"] for r in b_])
            sig = ((sa ** 2 + sb ** 2) / 2) ** 0.5
            out.append(f"| {n} | {ma:.1f} ± {sa:.1f} | {mb:.1f} ± {sb:.1f} | {ma - mb:+.1f} | {sig:.1f} | "
                       f"{(ma - mb) / sig if sig > 0 else float('nan'):+.1f} |")
        out.append("")
    # figure 0: seed-0 final score against α, one panel per n (how wide each method's good α window is)
    fig, axes = plt.subplots(1, len(ns), figsize=(3.0 * len(ns), 2.8), squeeze=False, sharey=True)
    for ax, n in zip(axes[0], ns):
        for m in (x for x in USES_ALPHA if x in methods):
            pts = sorted((r["alpha"], r["final"]) for r in runs if r["n"] == n and r["method"] == m and r["seed"] == 0)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=COLORS[m], label=LABELS[m])
        ax.axhline(_norm(data[n]), color="k", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"n = {n}")
        ax.set_xlabel("α")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("final score (seed 0)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIGS / f"{fig_prefix}_alpha.png", dpi=90)
    plt.close(fig)
    out += [f"Seed-0 final score against α (dashed: the data's own score): ![α sweep](figures/{fig_prefix}_alpha.png)", ""]
    # figure 1: final score vs n at the chosen α
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        xs = [n for n in ns if cell.get((n, m))]
        ms = [_mean_std([r["final"] for r in cell[(n, m)]]) for n in xs]
        ax.errorbar(xs, [v[0] for v in ms], yerr=[v[1] for v in ms], label=LABELS[m], color=COLORS[m], marker="o",
                    capsize=3)
    ax.plot(ns, [_norm(data[n]) for n in ns], "k--", label="data (behaviour)")
    ax.set_xlabel("agents n")
    ax.set_ylabel("normalised score (final, chosen α)")
    ax.set_title(f"Equal_Line, {runs[0]['policy']}, {reward}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(FIGS / f"{fig_prefix}_scaling.png", dpi=110)
    plt.close(fig)
    # figure 2: learning curves per n; figure 3: Q calibration per n (every α: solid = chosen α, dotted = others)
    for name, ylabel, get in (
        ("curves", "normalised score", lambda r: [(s, v) for s, v in r["curve"]]),
        ("q_calibration", "mean Q_tot(s, a^D) − MC return",
         lambda r: [(d["steps"], d.get("diag_q_minus_mc", float("nan"))) for d in r.get("diagnostics", [])]),
    ):
        fig, axes = plt.subplots(1, len(ns), figsize=(3.2 * len(ns), 3), squeeze=False)
        for ax, n in zip(axes[0], ns):
            for r in runs:
                if r["n"] != n or (name == "q_calibration" and r["method"] == "bc"):
                    continue
                pts = get(r)
                if not pts:
                    continue
                chosen = r["alpha"] is None or best_alpha.get((n, r["method"])) == r["alpha"]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=COLORS[r["method"]], alpha=0.8,
                        ls="-" if chosen else ":")
            ax.set_title(f"n = {n}")
            ax.set_xlabel("gradient steps")
            if name == "q_calibration":
                ax.set_yscale("symlog")
                ax.axhline(0.0, color="k", lw=0.8)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(ylabel)
        from matplotlib.lines import Line2D

        shown = [m for m in methods if not (name == "q_calibration" and m == "bc")]
        axes[0][0].legend([Line2D([], [], color=COLORS[m]) for m in shown], [LABELS[m] for m in shown], fontsize=7)
        fig.tight_layout()
        fig.savefig(FIGS / f"{fig_prefix}_{name}.png", dpi=90)
        plt.close(fig)
    out += [f"Learning curves (solid: the chosen α, dotted: the other α): ![curves](figures/{fig_prefix}_curves.png)", "",
            "Value calibration (mean learned Q_tot on the dataset's own actions minus the discounted Monte-Carlo "
            "return from the same steps, on the learner's fixed diagnostic episodes; symlog scale): "
            f"![Q calibration](figures/{fig_prefix}_q_calibration.png)", ""]
    out += ["Final diagnostics (mean over seeds, every α): per-agent agreement of the greedy action with the data, "
            "Q(a^D) − MC, Q(greedy) − Q(a^D), share of greedy actions with β support.", "",
            "| n | method | α | agreement | Q(a^D) − MC | Q(greedy) − Q(a^D) | β support |", "|---|---|---|---|---|---|---|"]
    for n in ns:
        for m in methods:
            for x in ([None] if m not in USES_ALPHA else alphas):
                rs = [r for r in runs if r["n"] == n and r["method"] == m and r["alpha"] == x and r.get("diagnostics")]
                if not rs:
                    continue
                last = [r["diagnostics"][-1] for r in rs]
                g = lambda k: sum(d.get(k, float("nan")) for d in last) / len(last)  # noqa: E731
                out.append(f"| {n} | {LABELS[m]} | {'' if x is None else f'{x:g}'} | {g('diag_agent_agreement'):.3f} | "
                           f"{g('diag_q_minus_mc'):.3g} | {g('diag_q_greedy') - g('diag_q_data'):.3g} | "
                           f"{g('diag_beta_support'):.3f} |")
    out.append("")
    return out


def spread_pilot_section(folder: str = "mpe_spread_c_hesitant0.3") -> list[str]:
    """Continuous n-scaling on MPE spread (`benchmarks/run_spread_hesitant_pilot.sh`): the seed-0 α grid, then
    every method over its seeds at its best seed-0 α."""
    runs = []
    for f in sorted((RES / folder).glob("n*_*_a*_s*.json")):
        d = json.loads(f.read_text())
        if "summary" not in d:
            continue
        n, method, alpha, seed = re.fullmatch(r"n(\d+)_(\w+?)_a([0-9.]+)_s(\d+)", f.stem).groups()
        data = _card_data_score(Path(d["args"]["dataset"]) / "card.json")
        r = d["rows"][0]
        runs.append({"n": int(n), "method": method, "alpha": float(alpha) if method in USES_ALPHA else None,
                     "seed": int(seed), "final": r["final"], "best": r["best"], "seconds": r["seconds"],
                     "diag": (r.get("diagnostics") or [{}])[-1], "data": data, "args": d["args"]})
    if not runs:
        return []
    a = runs[0]["args"]
    ns = sorted({r["n"] for r in runs})
    order = ["cfcql", "macql", "matd3bc", "bc"]
    name = lambda m: {"matd3bc": "MATD3+BC"}.get(m, LABELS.get(m, m))  # noqa: E731
    best_alpha = chosen_alpha(runs)
    alphas = sorted({r["alpha"] for r in runs if r["alpha"] is not None})
    out = ["## MPE spread, continuous actions: the advantage on a centralised critic", "",
           "With a mixer, MACQL's joint penalty decomposes into per-agent terms (exactly n × CFCQL's at uniform λ "
           "for an additive Q_tot, `tests/discrete/test_losses.py`), so on the Equal_Line families a per-method "
           "α sweep closes the gap. A centralised critic Q(s, a_1..a_n) does not factorise. Data "
           "(`benchmarks/run_spread_hesitant_pilot.sh`): `hesitant:0.3` on `mpe_spread` with continuous actions "
           "(per agent and step the scripted expert's steer with p = 0.3, else no force; σ = 0.1 noise, ε = 0.1 "
           f"random), 1 000 episodes (25 000 transitions) per n. {a['steps']} critic steps of {a['batch']} "
           f"transitions, lr {a['lr']}, γ {a['gamma']}, width {a['hidden']}, grad clip {a['grad_clip']}, uniform λ; "
           f"evaluation every {a['eval_every']} steps on {a['eval_episodes']} episodes.", "",
           "**The α grid (seed 0)**, final (best) normalised score; bold: the α the seeds use:", "",
           "| n | method | " + " | ".join(f"α {x:g}" for x in alphas) + " |", "|---|---|" + "---|" * len(alphas)]
    for n in ns:
        for m in ("cfcql", "macql"):
            row = f"| {n} | {name(m)} |"
            for x in alphas:
                rs = [r for r in runs if r["n"] == n and r["method"] == m and r["alpha"] == x and r["seed"] == 0]
                b = "**" if rs and best_alpha.get((n, m)) == x else ""
                row += f" {b}{rs[0]['final']:.1f}{b} ({rs[0]['best']:.1f}) |" if rs else " |"
            out.append(row)
    out += ["", "**At the chosen α**, final normalised score, mean ± std over seeds (the number of seeds in brackets):", "",
            "| n | data | " + " | ".join(name(m) for m in order) + " | CFCQL − MACQL (Δ / pooled σ) |",
            "|---|---|" + "---|" * len(order) + "---|"]
    for n in ns:
        row = f"| {n} | {next(r['data'] for r in runs if r['n'] == n):.1f} |"
        stats = {}
        for m in order:
            rs = [r for r in runs if r["n"] == n and r["method"] == m
                  and (m not in USES_ALPHA or best_alpha.get((n, m)) == r["alpha"])]
            if not rs:
                row += " |"
                continue
            stats[m] = _mean_std([r["final"] for r in rs]) + (len(rs),)
            tag = f", α {best_alpha[(n, m)]:g}" if (n, m) in best_alpha else ""
            row += f" {stats[m][0]:.1f} ± {stats[m][1]:.1f} ({stats[m][2]}{tag}) |"
        if "cfcql" in stats and "macql" in stats and min(stats["cfcql"][2], stats["macql"][2]) > 1:
            sig = ((stats["cfcql"][1] ** 2 + stats["macql"][1] ** 2) / 2) ** 0.5
            d = stats["cfcql"][0] - stats["macql"][0]
            row += f" {d:+.1f} ({d / sig if sig > 0 else float('nan'):+.1f}) |"
        else:
            row += " |"
        out.append(row)
    out += ["", "Critic diagnostics at the end, seed 0 at the chosen α: Q(a^D) − MC (the MC return is cut at the "
            "25-step limit, so it is a lower bound) and Q(greedy) − Q(a^D):", "",
            "| n | method | Q(a^D) − MC | Q(greedy) − Q(a^D) | seconds |", "|---|---|---|---|---|"]
    for n in ns:
        for m in order[:3]:
            rs = [r for r in runs if r["n"] == n and r["method"] == m and r["seed"] == 0
                  and (m not in USES_ALPHA or best_alpha.get((n, m)) == r["alpha"])]
            if rs:
                g = rs[0]["diag"]
                out.append(f"| {n} | {name(m)} | {g.get('diag_q_minus_mc', float('nan')):.2f} | "
                           f"{g.get('diag_q_greedy', float('nan')) - g.get('diag_q_data', float('nan')):.2f} | "
                           f"{rs[0]['seconds']:.0f} |")
    out.append("")
    return out


def spread_variants_section(base: str = "mpe_spread_c_hesitant0.3") -> list[str]:
    """The pilot's protocol variants (``POLYAK`` / ``STEPS`` of run_spread_hesitant_pilot.sh), seed 0 next to the
    reference protocol's run of the same cell."""
    rows = []
    for folder in sorted(RES.glob(base + "_tau*")) + sorted(RES.glob(base + "_steps*")):
        for f in sorted(folder.glob("n*_*_a*_s0.json")):
            n, method, alpha = re.fullmatch(r"n(\d+)_(\w+?)_a([0-9.]+)_s0", f.stem).groups()
            ref = RES / base / f.name
            r = json.loads(f.read_text())["rows"][0]
            r0 = json.loads(ref.read_text())["rows"][0] if ref.exists() else None
            g = r["diagnostics"][-1]
            rows.append(f"| {folder.name[len(base) + 1:]} | {n} | {LABELS.get(method, method)} | {alpha} | "
                        f"{r['final']:.1f} ({r['best']:.1f}) | " + (f"{r0['final']:.1f} ({r0['best']:.1f})" if r0 else "") +
                        f" | {g.get('diag_q_data', float('nan')):.1f} | {g.get('diag_q_greedy', float('nan')):.1f} |")
    if not rows:
        return []
    return ["**Protocol variants** (`POLYAK=… / STEPS=… bash benchmarks/run_spread_hesitant_pilot.sh grid`), seed 0, "
            "final (best) normalised score against the same cell at the reference protocol (Polyak 0.01, 4 000 "
            "steps), and the critic's Q(a^D) and Q(greedy) at the end:", "",
            "| variant | n | method | α | score | reference protocol | Q(a^D) | Q(greedy) |",
            "|---|---|---|---|---|---|---|---|", *rows, ""]


def spread_signal_section(name: str = "mpe_spread_c_agent_signal.json") -> list[str]:
    """benchmarks/spread_agent_signal.py: the return one agent gains by steering like the expert."""
    rows = _load(name)
    if not rows:
        return []
    out = ["**One agent's signal** (`benchmarks/spread_agent_signal.py`): mean team return when every agent "
           "hesitates (the data's behaviour), when agent 0 alone steers like the expert, and when all do; the "
           "one-agent gain (± standard error), its share of the all-agent gain, and the gain over the std of the "
           f"data's returns ({rows[0]['episodes']} episodes each, the same reset seeds):", "",
           "| n | data | one steers | all steer | one-agent gain | share | gain / std |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['n']} | {r['return_data']:.2f} | {r['return_one']:.2f} | {r['return_all']:.2f} | "
                   f"{r['one_agent_gain']:.2f} ± {r['one_agent_gain_se']:.2f} | {100 * r['one_agent_share']:.0f} % | "
                   f"{r['gain_over_std']:.2f} |")
    return out + [""]


def _probe_seed_summary(runs: list[dict]) -> list[str]:
    """The protocol the probe arrived at (100 000 transitions, actor lr 0.001) as an n-scaling table: every α
    tried at seed 0, and each method's best seed-0 α over all its seeds; BC and MATD3+BC from
    ``mpe_spread_c_hesitant0.3_probe_baselines_n<n>_e4000.json`` (benchmarks/compare.py, same data and settings)."""
    cells: dict = {}
    for d in runs:
        a = d["args"]
        if "e4000" not in (a.get("data") or "") or (a.get("actor_lr") or 0.01) != 0.001:
            continue
        cells.setdefault((a["n"], a["method"]), {}).setdefault(a["alpha"], {})[a["seed"]] = d["rows"][-1]["score"]
    if not cells:
        return []
    out = ["", "**n-scaling at 100 000 transitions and actor lr 0.001** (the critic's lr stays 0.01; 4 000 steps, "
           "batch 256): seed-0 final score at every α tried, then each method's best seed-0 α over its seeds "
           "(mean ± std, seeds in brackets), with BC and MATD3+BC on the same data by `benchmarks/compare.py`:", "",
           "| n | data | CFCQL: α → seed-0 final | MACQL: α → seed-0 final | CFCQL at its best α | MACQL at its best α "
           "| BC | MATD3+BC |", "|---|---|---|---|---|---|---|---|"]
    for n in sorted({k[0] for k in cells}):
        data = _card_data_score(HERE / "data" / "pilot" / f"mpe_spread_c_n{n}_hesitant0.3_e4000" / "card.json")
        row = f"| {n} | {data:.1f} |"
        best = {}
        for m in ("cfcql", "macql"):
            grid = cells.get((n, m), {})
            row += " " + ", ".join(f"{x:g} → {v[0]:.1f}" for x, v in sorted(grid.items()) if 0 in v) + " |"
            seeded = {x: v for x, v in grid.items() if 0 in v}
            if seeded:
                best[m] = max(seeded, key=lambda x: seeded[x][0])
        for m in ("cfcql", "macql"):
            if m in best:
                xs = list(cells[(n, m)][best[m]].values())
                mu, sd = _mean_std(xs)
                row += f" {mu:.1f} ± {sd:.1f} ({len(xs)}, α {best[m]:g}) |"
            else:
                row += " |"
        b = _load(f"mpe_spread_c_hesitant0.3_probe_baselines_n{n}_e4000.json")
        for m in ("bc", "matd3bc"):
            if b and m in b["summary"]:
                k = len([r for r in b["rows"] if r["method"] == m])
                row += f" {b['summary'][m]['final_mean']:.1f} ± {b['summary'][m]['final_std']:.1f} ({k}) |"
            else:
                row += " |"
        out.append(row)
    return out


def spread_probe_section(folder: str = "mpe_spread_c_hesitant0.3_probe") -> list[str]:
    """benchmarks/spread_critic_probe.py: does the critic rank the scripted expert's steer above holding still?"""
    runs = [json.loads(f.read_text()) for f in sorted((RES / folder).glob("*.json"))]
    if not runs:
        return []
    out = ["**Critic probe** (`benchmarks/spread_critic_probe.py`, seed 0). On every logged step of the diagnostic "
           "episodes and for every agent i, with the others at their logged actions: how often the first critic "
           "ranks the scripted expert's steer e_i above no force (`e > hold`, the ranking a better-than-data "
           "policy needs), Q(e_i) − Q(a^D), the actor's counterfactual gain Q(π_i) − Q(a^D), the cosine between "
           "π_i and e_i, and the joint Q(π) − Q(a^D) that the TD target bootstraps from. Per evaluation "
           "(1 000 steps); the probe's figures at the last one:", "",
           "| n | method | α | data | actor lr | seed | score per 1 000 steps | e > hold | Q(e) − Q(a^D) | "
           "Q(π_i) − Q(a^D) | cos(π, e) | saturated | Q(π) − Q(a^D) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in runs:
        a, r = d["args"], d["rows"][-1]
        data = "100 000" if a.get("data") and "e4000" in a["data"] else "25 000"
        curve = " → ".join(f"{x['score']:.0f}" for x in d["rows"][1:])
        out.append(f"| {a['n']} | {LABELS.get(a['method'], a['method'])} | {a['alpha']:g} | {data} | "
                   f"{a.get('actor_lr') or 0.01:g} | {a['seed']} | {curve} | {r['expert_beats_hold']:.2f} | {r['expert_gain']:+.2f} | "
                   f"{r['pi_gain']:+.2f} | {r['pi_cos_expert']:.2f} | {r['pi_saturated']:.2f} | {r['joint_pi_gain']:+.2f} |")
    out += _probe_seed_summary(runs)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1, 1, 0.8]})
    for d in runs:
        if d["args"]["seed"] != 0:
            continue
        steps = [r["steps"] for r in d["rows"][1:]]
        axes[0].plot(steps, [r["expert_beats_hold"] for r in d["rows"][1:]], marker="o", label=d["run"])
        axes[1].plot(steps, [r["score"] for r in d["rows"][1:]], marker="o", label=d["run"])
    axes[0].set(xlabel="gradient steps", ylabel="fraction: Q(e_i) > Q(hold_i)", title="critic ranks the expert's steer first")
    axes[1].set(xlabel="gradient steps", ylabel="normalised score", title="greedy policy (seed 0)", ylim=(-100, 105))
    axes[2].axis("off")
    axes[2].legend(*axes[1].get_legend_handles_labels(), fontsize=5, loc="center left")
    FIGS.mkdir(exist_ok=True)
    fig.savefig(FIGS / "mpe_spread_c_probe.png", dpi=90)
    plt.close(fig)
    return out + ["", "![critic probe](figures/mpe_spread_c_probe.png)", ""]


def smax_section() -> list[str]:
    """SMAX maps (`benchmarks/run_smax_compare.sh`): every benchmarks/results/smax/*.json, grouped by
    dataset and budget; per method and α the final win rate and normalised score over seeds."""
    groups: dict[tuple, dict[tuple, list[dict]]] = {}
    data_wins: dict[str, float] = {}
    for f in sorted((RES / "smax").glob("*.json")):
        d = json.loads(f.read_text())
        a = d["args"]
        key = (a["dataset"], a["steps"], a["eval_episodes"])
        if "data_win_rate" in d:
            data_wins[a["dataset"]] = d["data_win_rate"]
        for r in d["rows"]:
            alpha = a["alpha"] if r["method"] in ("cfcql", "macql") else None
            groups.setdefault(key, {}).setdefault((r["method"], alpha), []).append(r)
    if not groups:
        return []
    names = {"cfcql": "CFCQL", "macql": "MACQL", "bc": "BC", "none": "offline QMIX"}
    out = ["## SMAX (JaxMARL's StarCraft-like maps; not comparable with SC2 SMAC numbers)", "",
           "Two kinds of data, 1 000 battles each (a battle is won exactly when its return exceeds 1.5):",
           "",
           "- `smax_<map>_medium`: JaxMARL's heuristic with 10 % random moves (`eps_expert:0.1`, made by "
           "`benchmarks/run_smax_compare.sh`'s command); it won 31 % of its 2s3z battles and none of its 5m_vs_6m ones. "
           "Its card's references are uniform random and the noise-free heuristic, so 100 is the heuristic's own return.",
           "- `smax_<map>_<quality>_ppo`: the qualities of the project's PPO behaviour policies (docs/SMAX.md; "
           "`benchmarks/run_smax_ppo_compare.sh`). Its references are uniform random and the PPO expert (sampled), so "
           "100 is the expert policy's own return.",
           "",
           "MLP agents on transitions, QMIX mixer, batch 256, lr 1e-3; greedy decentralised evaluation against the "
           "heuristic enemy. The win rate is the share of evaluation battles won at the last evaluation.",
           ""]
    for (ds, steps, eps), rows in sorted(groups.items(), key=lambda kv: kv[0]):
        won = f" The data won {100 * data_wins[ds]:.0f} % of its battles." if ds in data_wins else ""
        out += [f"### `{ds}`, {steps} gradient steps, {eps} evaluation battles", ""]
        out += [won.strip(), ""] if won else []
        out += ["| method | α | seeds | final win rate | best win rate | final normalised | best normalised |",
                "|---|---|---|---|---|---|---|"]
        order = sorted(rows, key=lambda k: (list(names).index(k[0]) if k[0] in names else 9, k[1] or 0))
        for method, alpha in order:
            rs = rows[(method, alpha)]
            fw, bw = _mean_std([r.get("final_win", float("nan")) for r in rs]), _mean_std([r.get("best_win", float("nan")) for r in rs])
            fs, bs = _mean_std([r["final"] for r in rs]), _mean_std([r["best"] for r in rs])
            out.append(f"| {names.get(method, method)} | {'' if alpha is None else alpha} | {len(rs)} | "
                       f"{fw[0]:.2f} ± {fw[1]:.2f} | {bw[0]:.2f} ± {bw[1]:.2f} | {fs[0]:.1f} ± {fs[1]:.1f} | "
                       f"{bs[0]:.1f} ± {bs[1]:.1f} |")
        out.append("")
    return out


# appendix Table 2 (normalised scores, random / medium-replay / medium / expert) for the methods it lists
PAPER_TABLE2 = {
    "mpe_spread": {"cfcql": (62.2, 52.2, 65.0, 112.0), "macql": (45.6, 25.5, 14.3, 12.2), "omar": (34.4, 37.9, 47.9, 114.9)},
    "mpe_tag": {"cfcql": (78.5, 71.1, 68.5, 118.2), "macql": (25.2, 11.9, 55.0, 108.4), "omar": (11.1, 47.1, 66.7, 116.2)},
    "mpe_world": {"cfcql": (68.0, 73.4, 93.8, 119.7), "macql": (11.7, 13.2, 67.4, 99.7), "omar": (5.9, 42.9, 74.6, 110.4)},
}
T2_QUALITIES = ("random", "medium-replay", "medium", "expert")
# the §7.1 variants of CFCQL and MACQL (run_mpe_table2.sh JOB=<variant>): label suffix -> column tag.
# -ps: penalty samples around the current and next-state policy too; -pre: actor_preact_l2 1e-3;
# -warm: -pre and actor_bc_warmup 2 000
T2_VARIANTS = {"": "", "-pre": "+pre", "-ps": "+PS", "-ps-pre": "+PS+pre", "-warm": "+warm", "-ps-warm": "+PS+warm"}
T2_LABELS = {**{m + v: name + tag for m, name in (("cfcql", "CFCQL"), ("macql", "MACQL")) for v, tag in T2_VARIANTS.items()},
             "icql": "ICQL", "omar": "OMAR", "matd3bc": "MATD3+BC", "bc": "BC"}
T2_COLORS = {"cfcql": "tab:red", "cfcql-pre": "salmon", "cfcql-ps": "darkred", "cfcql-ps-pre": "black", "cfcql-warm": "magenta", "cfcql-ps-warm": "purple", "macql": "tab:blue",
             "macql-pre": "lightskyblue", "macql-ps": "navy", "macql-ps-pre": "tab:gray", "macql-warm": "cyan", "macql-ps-warm": "teal", "icql": "tab:purple", "omar": "tab:orange",
             "matd3bc": "tab:brown", "bc": "tab:green"}
T2_PAIRS = tuple(("cfcql" + v, "macql" + v) for v in T2_VARIANTS)  # the Δ / pooled σ columns


def _table2_cells(folder: str = "mpe_table2") -> dict:
    """(task, quality, method) -> the finished runs (one per seed) of benchmarks/run_mpe_table2.sh, each
    with ``data_score`` (the dataset's own normalised return) when its file or its card knows it."""
    cells: dict = {}
    pat = re.compile(r"(mpe_[a-z]+)_(" + "|".join(T2_QUALITIES) + r")_([a-z0-9]+(?:" + "|".join(sorted(filter(None, T2_VARIANTS), key=len, reverse=True))
                     + r")?)_s(\d+)\.json")
    for f in sorted((RES / folder).glob("*.json")):
        m = pat.fullmatch(f.name)
        if not m:
            continue
        d = json.loads(f.read_text())
        refs = d.get("reference_returns")
        if refs is None:  # written before compare.py stored them: the card, when the data is here
            card = Path(d["args"]["dataset"]) / "card.json"
            refs = json.loads(card.read_text())["reference_returns"] if card.exists() else None
        for r in d["rows"]:
            r["args"], r["refs"], r["data_raw"] = d["args"], refs, d["data_return"]["mean"]
            r["data_score"] = _norm({"data_return": d["data_return"], "reference_returns": refs}) if refs else float("nan")
            cells.setdefault((m[1], m[2], m[3]), []).append(r)
    # a run written before compare.py stored the references, whose data is not on this machine: the
    # references of another run on the same dataset (one card per task × quality)
    known = {(k[0], k[1]): r for k, rs in cells.items() for r in rs if r["refs"]}
    for k, rs in cells.items():
        for r in rs:
            if r["refs"] is None and (k[0], k[1]) in known:
                r["refs"], r["data_score"] = known[k[:2]]["refs"], known[k[:2]]["data_score"]
    return cells


def _t2_data_score(cells: dict, task: str, quality: str) -> float:
    """The dataset's own normalised score, from any run on it (NaN when none knows it)."""
    return next((r["data_score"] for k, rs in cells.items() if k[:2] == (task, quality) for r in rs), float("nan"))


T2_DATA = {  # results folder -> (section heading, how its data was made, its ablation folder or None); figures are
    # named after the folder
    "mpe_table2": ("## MPE at the reference's settings (`benchmarks/run_mpe_table2.sh`): the shape of the paper's Table 2",
                   "`benchmarks/make_families.sh` (trained behaviour policies, 100 000 transitions per quality; the "
                   "reference uses 1 000 000)", "mpe_table2_ablation"),
    "mpe_table2_det": ("## MPE at the reference's settings on narrow data (`DATA=benchmarks/data/families_det "
                       "OUT=benchmarks/results/mpe_table2_det bash benchmarks/run_mpe_table2.sh`)",
                       "`NARROW=1 bash benchmarks/make_families.sh mpe_spread_continuous`: the same trained medium "
                       "and expert policies acting on their mean plus N(0, 0.1²) noise, clipped, instead of sampling "
                       "their wide PPO Gaussians (docs/DATASETS_DESIGN.md §7.2); 100 000 transitions per quality", None),
}


def table2_section(folder: str = "mpe_table2") -> list[str]:
    """The paper's MPE Table 2 shape at the reference's settings (benchmarks/run_mpe_table2.sh): per task, the
    final score of every method per quality next to the paper's, CFCQL − MACQL in pooled σ, the learning
    curves and the critics' calibration. ``folder``: a key of :data:`T2_DATA`."""
    heading, data_text, ablation_folder = T2_DATA[folder]
    cells = _table2_cells(folder)
    if not cells:
        return []
    import math

    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGS.mkdir(exist_ok=True)
    out = [heading, ""]
    for task in sorted({k[0] for k in cells}):
        qs = [q for q in T2_QUALITIES if any(k[:2] == (task, q) for k in cells)]
        methods = [m for m in T2_LABELS if any(k[0] == task and k[2] == m for k in cells)]
        pairs = [p for p in T2_PAIRS if all(any(k[0] == task and k[2] == m for k in cells) for m in p)]
        a = next(rs[0]["args"] for k, rs in cells.items() if k[0] == task)
        alphas = {q: next(rs[0]["args"]["alpha"] for k, rs in cells.items() if k[:2] == (task, q)) for q in qs}
        out += [f"### {task}, continuous actions", "",
                f"Data: {data_text}. Every method: {a['steps']} critic steps of batch {a['batch']} (actors every "
                f"5th step, Polyak {a['polyak_tau']} per round of 5), lr {a['lr']}, γ {a['gamma']}, hidden {a['hidden']}, "
                f"grad clip {a['grad_clip']}, α (CFCQL and MACQL) = "
                + ", ".join(f"{alphas[q]:g} ({q})" for q in qs)
                + f" from the reference's table, not swept here; greedy evaluation every {a['eval_every']} steps on "
                f"{a['eval_episodes']} episodes. Normalised score 100·(R − random)/(expert − random) with the card's "
                "references (the trained PPO expert). Cells: final score, mean ± std over seeds (seeds), [best evaluation]; "
                "paper: appendix Table 2 on its own data (not comparable in level, only in shape)."
                + ("" if not any("-" in m for m in methods) else
                   " +PS: the penalty's samples also around the current and the next-state policy (σ 0.2, "
                   f"{a.get('cql_samples', 10)} each; the reference's MuJoCo setting), otherwise the same settings. "
                   "+pre: the actors' output before the tanh penalised, actor_preact_l2 1e-3 (not in the reference). "
                   "+warm: +pre, and the actors clone the data for the first 2 000 critic steps (actor_bc_warmup, the "
                   "CQL authors' policy_eval_start)."), "",
                "| quality | data | " + " | ".join(T2_LABELS[m] for m in methods)
                + "".join(f" | {T2_LABELS[x]} − {T2_LABELS[y]} (Δ / pooled σ)" for x, y in pairs) + " | paper CFCQL | paper MACQL |",
                "|---|---|" + "---|" * (len(methods) + len(pairs)) + "---|---|"]
        for q in qs:
            row = f"| {q} | {_t2_data_score(cells, task, q):.1f} |"
            finals = {}
            for m in methods:
                rs = cells.get((task, q, m), [])
                if not rs:
                    row += " |"
                    continue
                fm, fs = _mean_std([r["final"] for r in rs])
                bm, _ = _mean_std([r["best"] for r in rs])
                finals[m] = (fm, fs, len(rs))
                row += f" {fm:.1f} ± {fs:.1f} ({len(rs)}) [{bm:.1f}] |"
            for x, y in pairs:
                if x in finals and y in finals and min(finals[x][2], finals[y][2]) >= 2:
                    (ma, sa, _), (mb, sb, _) = finals[x], finals[y]
                    sig = math.sqrt((sa ** 2 + sb ** 2) / 2)
                    row += f" {ma - mb:+.1f} ({(ma - mb) / sig if sig > 0 else float('nan'):+.1f}) |"
                else:
                    row += " |"
            paper = PAPER_TABLE2.get(task, {})
            row += "".join(f" {paper[m][T2_QUALITIES.index(q)]:g} |" if m in paper else " |" for m in ("cfcql", "macql"))
            out.append(row)
        out += ["", "The same runs' final raw returns (team return per 25-step episode, mean ± std over seeds; "
                "references: random " + ", ".join(
                    sorted({f"{r['refs']['random']:.2f}" for k, rs in cells.items() if k[0] == task for r in rs if r["refs"]}))
                + ", expert " + ", ".join(
                    sorted({f"{r['refs']['expert']:.2f}" for k, rs in cells.items() if k[0] == task for r in rs if r["refs"]}))
                + "):", "",
                "| quality | data | " + " | ".join(T2_LABELS[m] for m in methods) + " |",
                "|---|---|" + "---|" * len(methods)]
        for q in qs:
            rs_q = [r for k, rs in cells.items() if k[:2] == (task, q) for r in rs]
            row = f"| {q} | {rs_q[0]['data_raw']:.2f} |"
            for m in methods:
                rs = [r for r in cells.get((task, q, m), []) if r["refs"]]
                if not rs:
                    row += " |"
                    continue
                raw = [r["refs"]["random"] + r["final"] / 100 * (r["refs"]["expert"] - r["refs"]["random"]) for r in rs]
                rm, rsd = _mean_std(raw)
                row += f" {rm:.2f} ± {rsd:.2f} |"
            out.append(row)
        out.append("")
        # learning curves and the critics' calibration, one panel per quality; mean over seeds, band = ± std
        for name, ylabel, key in (("curves", "normalised score", None),
                                  ("q_calibration", "mean Q1(s, a^D) − MC return", "diag_q_minus_mc")):
            fig, axes = plt.subplots(1, len(qs), figsize=(3.4 * len(qs), 3), squeeze=False)
            for ax, q in zip(axes[0], qs):
                for m in methods:
                    rs = cells.get((task, q, m), [])
                    if not rs or (key and m == "bc"):
                        continue
                    pts = [r["curve"] if key is None else [(d["steps"], d.get(key, float("nan"))) for d in r["diagnostics"]]
                           for r in rs]
                    steps = [p[0] for p in pts[0]]
                    ys = np.array([[p[1] for p in c][: len(steps)] for c in pts if len(c) >= len(steps)])
                    mu, sd = ys.mean(0), ys.std(0)
                    ax.plot(steps, mu, color=T2_COLORS[m], label=T2_LABELS[m])
                    ax.fill_between(steps, mu - sd, mu + sd, color=T2_COLORS[m], alpha=0.15)
                if key:
                    ax.axhline(0.0, color="k", lw=0.8)
                else:
                    ax.axhline(_t2_data_score(cells, task, q), color="k", ls="--", lw=0.8)
                ax.set_title(q)
                ax.set_xlabel("critic steps")
                ax.grid(alpha=0.3)
            axes[0][0].set_ylabel(ylabel)
            axes[0][0].legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(FIGS / f"{folder}_{task}_{name}.png", dpi=90)
            plt.close(fig)
        out += [f"Learning curves (mean ± std over seeds; dashed: the data's own score): "
                f"![curves](figures/{folder}_{task}_curves.png)", "",
                "Critic calibration (mean Q1 on the dataset's own actions minus the discounted Monte-Carlo return from "
                "the same steps; the MC return is cut at the 25-step episode limit): "
                f"![Q calibration](figures/{folder}_{task}_q_calibration.png)", "",
                "Final diagnostics (mean over seeds): Q1(s, a^D) − MC; Q1(s, π(o)) − Q1(s, a^D), the joint policy's "
                "margin over the logged action; the share of agents whose policy action lies within 0.1 of the "
                "logged one in every dimension; the share of action components at |π| ≥ 0.99 (saturated tanh; "
                "recorded from this change on, blank before); seconds per run.", "",
                "| quality | method | Q(a^D) − MC | Q(π) − Q(a^D) | agreement | saturated | seconds |",
                "|---|---|---|---|---|---|---|"]
        for q in qs:
            for m in methods:
                rs = cells.get((task, q, m), [])
                if not rs:
                    continue
                last = [r["diagnostics"][-1] for r in rs]
                g = lambda k: sum(d.get(k, float("nan")) for d in last) / len(last)  # noqa: E731
                sec = sum(r["seconds"] for r in rs) / len(rs)
                critic = "| |" if m == "bc" else f"{g('diag_q_minus_mc'):.3g} | {g('diag_q_greedy') - g('diag_q_data'):.3g} |"
                out.append(f"| {q} | {T2_LABELS[m]} | {critic} {g('diag_agent_agreement'):.3f} | "
                           f"{'' if math.isnan(g('diag_actor_saturation')) else format(g('diag_actor_saturation'), '.2f')} | "
                           f"{sec:.0f} |")
        out.append("")
    if ablation_folder:
        out += table2_ablation_lines(cells, ablation_folder)
    return out


ABLATIONS = {  # label -> (penalty, actor step, actor lr or None for --lr)
    "cfcql": ("counterfactual", "counterfactual", None), "macql": ("joint", "joint", None),
    "macql-cf-actor": ("joint", "counterfactual", None), "cfcql-joint-actor": ("counterfactual", "joint", None),
    "macql-actor-lr0.001": ("joint", "joint", 0.001), "cfcql-actor-lr0.001": ("counterfactual", "counterfactual", 0.001),
    "macql-policy-samples": ("joint, + samples around π", "joint", None),
}


def table2_ablation_lines(cells: dict, folder: str = "mpe_table2_ablation") -> list[str]:
    """`run_mpe_table2.sh` JOB=ablation: CFCQL and MACQL differ in the penalty *and* in the actor step; which one
    moves the score, and does a smaller actor lr change it (seed 0, one quality)."""
    pat = re.compile(r"(mpe_[a-z]+)_(" + "|".join(T2_QUALITIES) + r")_([a-z0-9.-]+)_s0\.json")
    runs = {}
    for f in sorted((RES / folder).glob("*.json")):
        m = pat.fullmatch(f.name)
        if m and m[3] in ABLATIONS:
            d = json.loads(f.read_text())
            runs[(m[1], m[2], m[3])] = {**d["rows"][0], "args": d["args"]}
    if not runs:
        return []
    out = ["**Which difference matters** (`JOB=ablation bash benchmarks/run_mpe_table2.sh`, seed 0, same settings "
           "as the table; the first rows are the table's own seed-0 runs). CFCQL's counterfactual actor step moves one "
           "agent at a time with the others at their logged actions, MACQL's joint step moves all of them; "
           "the saturation column is blank for runs recorded before it existed.", "",
           "| task | quality | penalty | actor step | actor lr | final | best | Q(a^D) − MC | Q(π) − Q(a^D) | saturated |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for task, q in sorted({k[:2] for k in runs}):
        rows = [(m, r) for m in ("cfcql", "macql") for r in cells.get((task, q, m), []) if r["seed"] == 0]
        rows += [(label, runs[(task, q, label)]) for label in ABLATIONS if (task, q, label) in runs]
        for label, r in rows:
            pen, act, lr = ABLATIONS[label]
            d = r["diagnostics"][-1]
            sat = d.get("diag_actor_saturation")
            out.append(f"| {task} | {q} | {pen} | {act} | {lr or r['args']['lr']:g} | {r['final']:.1f} | {r['best']:.1f} | "
                       f"{d['diag_q_minus_mc']:.3g} | {d['diag_q_greedy'] - d['diag_q_data']:.3g} | "
                       f"{'' if sat is None else format(sat, '.2f')} |")
    out.append("")
    return out


def main() -> None:
    lines = ["# Results", "", "Generated by `python benchmarks/make_results.py` from `benchmarks/results/*.json`; "
             "the commands that produced each file are in the sections' scripts.", ""]
    for prefix, fig_prefix, title in SCALING_FAMILIES:
        lines += scaling_section(_scaling_runs(prefix), fig_prefix, title)
    lines += table2_section()
    lines += table2_section("mpe_table2_det")
    lines += spread_pilot_section()
    lines += spread_variants_section()
    lines += spread_signal_section()
    lines += spread_probe_section()
    lines += smax_section()
    lines += compare_table("compare_equal_line_n4.json", "Equal_Line, n = 4 (`benchmarks/compare.py`)")
    lines += compare_table("compare_equal_line_n10.json", "Equal_Line, n = 10 (`benchmarks/compare.py`)")
    lines += compare_table("compare_mpe_spread.json", "MPE cooperative navigation (`benchmarks/compare.py`)")
    for q in ("random", "medium-replay", "medium", "expert"):
        lines += compare_table(f"compare_mpe_spread_continuous_{q}.json",
                               f"MPE cooperative navigation, continuous actions, {q} (`benchmarks/run_continuous_compare.sh`)")
    lines += ["## Protocol check (issue 3)", "",
              "collect → card → train → normalised score from the card's references, end to end. The bundled "
              "medium-replay sets are tutorial-sized (375-2 000 transitions) and the budgets short, so these "
              "runs show the pipeline, not a ranking. The 500-1 000-transition continuous MPE sets are too small "
              "for a critic: on mpe_spread the CFCQL and MACQL actors leave the data's support and score far below "
              "the random reference while BC, which only imitates, stays near the data; on mpe_world's 500 "
              "transitions all three land below random. The `full recorded PPO replay` runs repeat the continuous "
              "MPE check with the same settings on the 40 000-260 000 transitions recorded while the behaviour "
              "policy trained: there CFCQL leads on mpe_spread and mpe_world, and MACQL's joint penalty breaks "
              "down on both, while BC leads on mpe_tag. α was not tuned per task.", ""]
    lines += compare_table("protocol_equal_line_n4_discrete_medium-replay.json",
                           "Protocol check: equal_line n = 4, bundled medium-replay (`benchmarks/run_protocol_check.sh`)")
    for t in ("mpe_spread", "mpe_tag", "mpe_world"):
        for v in ("continuous", "discrete"):
            lines += compare_table(f"protocol_{t}_{v}_medium-replay.json",
                                   f"Protocol check: {t} {v}, bundled medium-replay (`benchmarks/run_protocol_check.sh`)")
    for t in ("mpe_spread", "mpe_tag", "mpe_world"):
        lines += compare_table(f"protocol_full_{t}_continuous_medium-replay-ppo.json",
                               f"Protocol check: {t} continuous, full recorded PPO replay "
                               "(`FULL_REPLAY=1 benchmarks/run_protocol_check.sh`)")
    lines += compare_table("protocol_mamujoco_halfcheetah_2x3_medium-replay.json",
                           "Protocol check: HalfCheetah 2x3, bundled medium-replay (`benchmarks/run_protocol_check.sh`)")
    lines += compare_table("compare_mamujoco_halfcheetah_2x3_medium.json",
                           "MaMuJoCo HalfCheetah 2x3, medium (`benchmarks/compare.py`)")
    lines += throughput_table()
    lines += throughput_table("throughput_2threads.json")
    lines += throughput_continuous_table()
    lines += scaleout_table()
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print((HERE / "RESULTS.md").read_text())


if __name__ == "__main__":
    main()
