"""``train_in_process`` (the loop behind benchmarks/compare.py and the learning tier) on every variant: the
same Learner and loss as ``rllib train``, pre-training what the config needs, then evaluating on the live task.

A handful of gradient steps each, on bundled data: the figures come back in the documented shape, the
parameters that the loss reaches moved, and the pre-trained models are the ones the learner uses.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from rllib_cfcql import CFCQLConfig
from rllib_cfcql.core.in_process import train_in_process
from rllib_cfcql.core.pretrain import pretrain_for_config
from rllib_cfcql.data.validate import validate_dataset

REPO = Path(__file__).resolve().parents[2]


def _config(ds: Path, card, **training):
    return (CFCQLConfig().environment(card["task"], env_config=card["env_config"]).offline_data(input_=[str(ds)])
            .training(train_batch_size_per_learner=32, **training).debugging(seed=0))


def _check_run(run, steps: int, every: int):
    assert [s for s, _ in run["curve"]] == list(range(every, steps + 1, every))
    assert all(math.isfinite(v) for _, v in run["curve"])
    assert [d["steps"] for d in run["diagnostics"]] == [s for s, _ in run["curve"]]
    assert math.isfinite(run["diagnostics"][-1]["diag_q_data"])
    assert run["learner"].num_grad_steps == steps


@pytest.mark.parametrize("name, training", [
    ("discrete, counterfactual penalty with β (λ from KL)",
     dict(cf_tau=1.0, bc_pretrain_steps=20, agent_rnn=False, obs_last_action=False, batch_unit="transitions")),
    ("discrete, MACQL joint penalty", dict(penalty="joint", agent_rnn=False, obs_last_action=False,
                                           batch_unit="transitions")),
])
def test_train_in_process_discrete(tmp_path, name, training):
    ds = REPO / "offline_data" / "equal_line_n4"
    card, episodes = validate_dataset(ds)
    cfg = _config(ds, card, behaviour_cache_dir=str(tmp_path), **training)
    run = train_in_process(cfg, episodes, steps=20, eval_every=10, eval_episodes=2)
    _check_run(run, 20, 10)
    module = run["learner"].module["default_policy"].unwrapped()
    if cfg.uses_behaviour_model:  # β is the pre-trained one, not the initial weights
        pre = pretrain_for_config(cfg, episodes, module.n_actions, seed=0, progress=False)  # from the cache
        for k, v in module.behaviour.state_dict().items():
            assert torch.equal(v.cpu(), torch.as_tensor(pre["behaviour"][0][k]).cpu()), k


@pytest.mark.parametrize("name, training", [
    ("continuous CFCQL, uniform λ", dict()),
    ("continuous MACQL", dict(penalty="joint")),
    ("continuous CFCQL, λ from the VAE", dict(lambda_model="vae", cf_tau=1.0, vae_pretrain_steps=20, vae_hidden=32)),
])
def test_train_in_process_continuous(tmp_path, name, training):
    """The continuous module has no discrete action count: pre-training must not ask it for one."""
    ds = REPO / "offline_data" / "mpe_spread_continuous" / "medium"
    card, episodes = validate_dataset(ds)
    cfg = _config(ds, card, behaviour_cache_dir=str(tmp_path), actor_update_interval=2, **training)
    cfg.validate()
    init = cfg.build_learner(env=None).module["default_policy"].unwrapped()  # same seed: the same initial weights
    torch.manual_seed(0)
    run = train_in_process(cfg, episodes, steps=20, eval_every=10, eval_episodes=2,
                           reference_returns=card["reference_returns"])
    _check_run(run, 20, 10)
    module = run["learner"].module["default_policy"].unwrapped()
    for part in ("actor", "critic"):
        moved = [not torch.equal(p, q) for p, q in zip(getattr(module, part).parameters(),
                                                        getattr(init, part).parameters())]
        assert all(moved), f"{name}: some {part} parameters did not move in 20 steps"
    if cfg.uses_vae:  # the learner's VAE is the pre-trained (cached) one
        pre = pretrain_for_config(cfg, episodes, None, seed=0, progress=False)
        for k, v in module.vae.state_dict().items():
            assert torch.equal(v.cpu(), torch.as_tensor(pre["vae"][0][k]).cpu()), k


def test_pretrain_for_config_needs_the_action_count_for_beta(tmp_path):
    ds = REPO / "offline_data" / "equal_line_n4"
    card, episodes = validate_dataset(ds)
    cfg = _config(ds, card, cf_tau=1.0, bc_pretrain_steps=5, behaviour_cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="needs n_actions"):
        pretrain_for_config(cfg, episodes, None, seed=0, progress=False)


def test_on_eval_figures_join_each_evaluation_row(tmp_path):
    ds = REPO / "offline_data" / "mpe_spread_continuous" / "medium"
    card, episodes = validate_dataset(ds)
    cfg = _config(ds, card, behaviour_cache_dir=str(tmp_path))
    seen = []

    def on_eval(learner):
        seen.append(learner.num_grad_steps)
        return {"probe_steps": float(learner.num_grad_steps)}

    run = train_in_process(cfg, episodes, steps=20, eval_every=10, eval_episodes=1,
                           reference_returns=card["reference_returns"], on_eval=on_eval)
    assert seen == [10, 20]
    assert [d["probe_steps"] for d in run["diagnostics"]] == [10.0, 20.0]
    assert all("diag_q_data" in d for d in run["diagnostics"])
