"""Equal_Line n-scaling: CFCQL vs MACQL vs BC vs offline QMIX as the team grows (the paper's figure).

    python benchmarks/equal_line_scaling.py --n 2,4,8,12,16,20 --seeds 0,1,2 --worker 0/2 &
    python benchmarks/equal_line_scaling.py --n 2,4,8,12,16,20 --seeds 0,1,2 --worker 1/2 &
    python benchmarks/make_results.py

Every flag this driver does not know goes to ``benchmarks/compare.py``'s runner (``--methods``,
``--seeds``, ``--steps``, ``--alpha``, ``--batch-unit``, …); the driver only changes the runner's
defaults to the sweep's budget (``SWEEP_DEFAULTS``).

For every n it first makes the dataset family member with the project's own collector
(``rllib-cfcql data collect``, here through :func:`rllib_cfcql.data.collect.collect`) under
``--data-root`` (not in git), then trains every (seed, method) with the same budget through
``benchmarks/compare.py``'s runner (RLlib's CFCQL Learner in-process, greedy evaluation in the live
env every ``--eval-every`` steps). Each run's result is written to
``<out-dir>/n<N>_<method>_s<seed>.json`` as soon as it finishes, and runs whose file exists are
skipped, so a stopped sweep resumes where it stopped. ``--worker i/k`` takes the i-th of k parts of
similar estimated cost (worker 0 makes the datasets first), for two single-threaded processes side
by side on a 2-core machine.

The data design (docs/DATASETS_DESIGN.md): ``medium_expert:0.3``, per episode each agent is
independently the scripted expert (its slot i·L/(n−1)) with probability 0.3, else the scripted
medium agent (slot i·L/(2(n−1))), both with ε = 0.1 random moves; the reference's episode limit of
50 steps, ended as a true terminal as the reference does. Each agent's expert behaviour is well
covered (30% of its episodes) while the all-expert team is rare (0.3^(n−1) of the episodes: agent 0's
two slots coincide), and behaviour cloning's most frequent behaviour is medium (return 5 of 10).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import compare  # benchmarks/compare.py, beside this script: the shared runner and its flags
import torch

from rllib_cfcql.data.collect import collect
from rllib_cfcql.data.validate import validate_dataset
from rllib_cfcql.envs.equal_line import REWARDS

HERE = Path(__file__).resolve().parent

# the sweep's budget: the runner's flags with other defaults (a flag given on the command line wins)
SWEEP_DEFAULTS = ["--methods", "cfcql,macql,bc,none", "--seeds", "0,1,2", "--steps", "20000",
                  "--eval-every", "2000", "--eval-episodes", "32", "--alpha", "5"]


def dataset_dir(root: Path, n: int, policy: str, reward: str = "min_spacing") -> Path:
    tag = "" if reward == "min_spacing" else f"_{reward}"
    return root / f"equal_line{tag}_n{n}_{policy.replace(':', '')}"


def ensure_dataset(root: Path, n: int, policy: str, episodes: int, reward: str = "min_spacing") -> Path:
    d = dataset_dir(root, n, policy, reward)
    if not (d / "card.json").exists():
        env_config = {"n_agents": n} if reward == "min_spacing" else {"n_agents": n, "reward": reward}
        collect(task="equal_line", env_config=env_config, policy=policy,
                episodes=episodes, seed=1000 + n, out_dir=d, quality=policy, reference_episodes=100,
                force=True, progress=False, source="scripted")
    return d


# rough seconds per 1 000 steps at batch 256 on this CPU, for splitting the runs between workers
COST = {"cfcql": lambda n: 2.2 * n, "macql": lambda n: 25 + 2.0 * n, "none": lambda n: 1.6 * n, "bc": lambda n: 0.8 * n}


def split(jobs: list[tuple], k: int) -> list[list[tuple]]:
    """Deterministic split of the runs into k lists of similar estimated cost, each kept in
    seed-major order (so whole seeds finish first)."""
    loads, parts = [0.0] * k, [[] for _ in range(k)]
    for job in jobs:
        w = loads.index(min(loads))
        parts[w].append(job)
        loads[w] += COST.get(job[2], COST["cfcql"])(job[1])
    return parts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="4,8,16,2,12,20", help="in the order to run them")
    ap.add_argument("--policy", default="medium_expert:0.3")
    ap.add_argument("--reward", default="min_spacing", choices=REWARDS,
                    help="Equal_Line's reward (env_config reward); slot_distance is the decomposable family")
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--none-max-n", type=int, default=8,
                    help="offline QMIX (no penalty) only up to this n: it diverges on every n tried")
    ap.add_argument("--data-root", default=str(HERE / "data"))
    ap.add_argument("--out-dir", default=str(HERE / "results" / "equal_line_scaling"))
    ap.add_argument("--worker", default="0/1", help="i/k: run the i-th of k parts of similar estimated cost")
    a, runner_flags = ap.parse_known_args()
    run_args = compare.parse_args(["--dataset", "-", *SWEEP_DEFAULTS, *runner_flags])
    torch.set_num_threads(1)
    wi, wk = (int(x) for x in a.worker.split("/"))
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ns = [int(x) for x in a.n.split(",")]
    jobs = [(s, n, m) for s in run_args.seeds.split(",") for n in ns for m in run_args.methods.split(",")
            if m != "none" or n <= a.none_max_n]
    for n in ns:  # every dataset before any run, in worker 0 only; the others wait for the cards
        if wi == 0:
            ensure_dataset(Path(a.data_root), n, a.policy, a.episodes, a.reward)
        else:
            while not (dataset_dir(Path(a.data_root), n, a.policy, a.reward) / "card.json").exists():
                time.sleep(5)
    loaded: dict[int, tuple] = {}
    for seed, n, method in split(jobs, wk)[wi]:
        f = out / f"n{n}_{method}_s{seed}.json"
        if f.exists():
            continue
        ds = ensure_dataset(Path(a.data_root), n, a.policy, a.episodes, a.reward)
        if n not in loaded:
            loaded[n] = validate_dataset(ds)
        card, episodes = loaded[n]
        row = compare.run_one(ds, card, episodes, method, int(seed), run_args)
        row.update(n=n, policy=a.policy, reward=a.reward, dataset=str(ds), data_return=card["return"],
                   reference_returns=card["reference_returns"], episode_limit=card["spec"]["episode_limit"],
                   args={k: v for k, v in vars(run_args).items() if k not in ("dataset", "methods", "seeds", "out")},
                   finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps(row, indent=1))
        tmp.replace(f)
        print(f"n={n:>2} {method:<6} seed {seed}: final {row['final']:6.1f} best {row['best']:6.1f} "
              f"({row['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
