"""Write the continuous-action tuned examples (one per task × quality) from the reference's settings.

    python scripts/make_tuned_examples.py

Settings per task from the reference implementation (docs/ALGORITHM.md, "Reference settings"): lr,
batch, hidden width, γ (0.99 for MaMuJoCo, which the reference meant but never
passed on), Polyak τ, policy samples for MuJoCo, and α per task × quality.
Every file points at the bundled dataset; the full-size one is a command-line
override (see each file's header).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUALITIES = ("random", "medium-replay", "medium", "expert")

TASKS = {
    "mpe_spread": dict(data="mpe_spread_continuous", env_config={"continuous_actions": True}, lr=0.01, batch=1024,
                       hidden=64, gamma=0.95, polyak=0.01, policy_samples=False, iterations=30,
                       alpha={"random": 0.5, "medium-replay": 1.0, "medium": 5.0, "expert": 2.5},
                       title="MPE cooperative navigation (mpe2 simple_spread_v3, 3 agents, 2-D continuous actions)"),
    "mpe_tag": dict(data="mpe_tag_continuous", env_config={"continuous_actions": True}, lr=0.001, batch=1024,
                    hidden=64, gamma=0.95, polyak=0.01, policy_samples=False, iterations=30,
                    alpha={"random": 0.5, "medium-replay": 0.5, "medium": 0.6, "expert": 2.0},
                    title="MPE predator-prey (mpe2 simple_tag_v3: 3 learned predators, shipped prey policy)"),
    "mpe_world": dict(data="mpe_world_continuous", env_config={"continuous_actions": True}, lr=0.001, batch=1024,
                      hidden=64, gamma=0.95, polyak=0.01, policy_samples=False, iterations=30,
                      alpha={"random": 0.5, "medium-replay": 0.5, "medium": 0.32, "expert": 0.3},
                      title="MPE world (mpe2 simple_world_comm_v3: learned adversary team, shipped good-agent policy)"),
    "mamujoco_halfcheetah_2x3": dict(data="mamujoco_halfcheetah_2x3", env_config={}, lr=3e-4, batch=256, hidden=256,
                                     gamma=0.99, polyak=0.005, policy_samples=True, iterations=30,
                                     alpha={"random": 0.1, "medium-replay": 0.4, "medium": 1.0, "expert": 1.7},
                                     title="Multi-agent MuJoCo HalfCheetah 2x3 (gymnasium-robotics mamujoco_v1)"),
}


def yaml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    return str(v)


def example(task: str, quality: str, s: dict, name: str, extra: dict | None = None, header: str = "",
            iterations: int | None = None) -> str:
    path = f"offline_data/{s['data']}/{quality}"
    config = {
        "env_config": s["env_config"],
        "input_": [path],
        "cql_alpha": s["alpha"][quality],
        "cf_tau": 1.0,
        "lambda_model": "uniform",
        "lr": s["lr"],
        "gamma": s["gamma"],
        "grad_clip": 0.5,
        "agent_hidden": s["hidden"],
        "polyak_tau": s["polyak"],
        "actor_update_interval": 5,
        "cql_samples": 10,
        "cql_policy_samples": s["policy_samples"],
        "train_batch_size_per_learner": s["batch"],
        "num_gradient_steps_per_iteration": 100,
        "evaluation_interval": 5,
        "evaluation_duration": 32 if task.startswith("mpe") else 5,
        "evaluation_num_env_runners": 1,
        "seed": 0,
    }
    config.update(extra or {})
    lines = [
        f"# CFCQL (continuous actions) on {s['title']},",
        f"# bundled {quality} dataset ({path}). Reference settings (docs/ALGORITHM.md, \"Reference settings\").",
        f"#   rllib train --file tuned_examples/{name}.yaml",
        "# Full-size data (make it with `rllib-cfcql data collect`, see offline_data/README.md):",
        f"#   rllib train --file tuned_examples/{name}.yaml --config '{{\"input_\": [\"offline_data/full/{s['data']}/{quality}\"]}}'",
    ]
    if header:
        lines += [f"# {h}" for h in header.splitlines()]
    lines += [f"{name}:", f"  env: {task}", "  run: CFCQL", "  stop:", f"    training_iteration: {iterations or s['iterations']}", "  config:"]
    lines += [f"    {k}: {yaml_value(v)}" for k, v in config.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    out = REPO / "tuned_examples"
    written = []
    for task, s in TASKS.items():
        for q in QUALITIES:
            name = f"cfcql-{task.replace('_', '-')}-continuous-{q}" if task.startswith("mpe") else f"cfcql-{task.replace('_', '-')}-{q}"
            (out / f"{name}.yaml").write_text(example(task, q, s, name))
            written.append(name)
    spread = TASKS["mpe_spread"]
    (out / "cfcql-mpe-continuous.yaml").write_text(example(
        "mpe_spread", "medium", spread, "cfcql-mpe-continuous",
        header="The continuous-action counterpart of the README's main job."))
    (out / "cfcql-mpe-continuous-sweep.yaml").write_text(example(
        "mpe_spread", "medium-replay", spread, "cfcql-mpe-continuous-sweep",
        extra={"cql_alpha": {"grid_search": [0.5, 1.0, 5.0]}, "cf_tau": {"grid_search": [0.0, 1.0]},
               "lambda_model": "vae", "vae_hidden": 256, "train_batch_size_per_learner": 256,
               "evaluation_num_env_runners": 0},
        header="Tune sweep over α × τ with the VAE behaviour density for λ (τ = 0: uniform λ); 6 trials.",
        iterations=10))
    for base, extra in (("macql", {"penalty": "joint"}), ("icql", {"critic": "independent"}),
                        ("omar", {"critic": "independent", "actor_objective": "omar"}),
                        ("matd3bc", {"penalty": "none", "actor_objective": "td3bc"})):
        name = f"{base}-mpe-continuous"
        (out / f"{name}.yaml").write_text(example("mpe_spread", "medium", spread, name, extra=extra,
                                                  header=f"Baseline {base.upper()} from the same code: {extra}"))
    print("wrote", len(written) + 6, "files")


if __name__ == "__main__":
    main()
