"""Behaviour policies used to make datasets.

A policy spec is a string: ``random`` (uniform over available actions),
``expert`` (the task's scripted expert), ``eps_expert:<eps>`` (per agent and
step, a uniform random available action with probability eps, else the expert
move), or ``mixed_agents:<p>`` (per episode, each agent is independently
*random* with probability p and a near-expert (eps=0.1) otherwise), or
``medium_expert:<p>`` (per episode, each agent is independently the task's
scripted expert with probability p and its scripted *medium* policy otherwise,
both with ε = 0.1 random moves), or ``checkpoint:<path>[@<x> | @sample]`` (a
trained policy checkpoint, :mod:`rllib_cfcql.behaviour_policies.checkpoint`:
deterministic, or with ``@<x>`` N(0, x²) action noise (continuous) / ε = x
random moves (discrete), or with ``@sample`` drawing from the policy's own
distribution, as it acted while it was trained), or ``slots:<q>`` (Equal_Line: per episode, each
agent independently heads for its own expert slot with probability q, else for one of the other
n−1 slots uniformly, with ε = 0.1 random moves; see :meth:`EqualLineEnv.slot_action`), or
``hesitant:<q>`` (Equal_Line and MPE spread, the tasks with a ``hold_action``: per agent and step, the
expert move with probability q, else holding still (no force, on MPE), with ε = 0.1 random moves;
with q < 0.5 every agent's most frequent action is to hold, so behaviour cloning stalls, while the expert move of every agent is well covered and the all-move
joint action, probability ≈ q^n per step, is rare; see docs/DATASETS_DESIGN.md). For continuous tasks a random move is a
uniform action on [-1, 1]^d and scripted moves carry N(0, 0.1²) noise. With p < 0.5 the most frequent action of
every agent is the medium one, so behaviour cloning lands at medium, while the
all-expert joint behaviour (probability p^n per episode) becomes rare as the
team grows: the data where conservatism on *joint* actions over-penalises.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from rllib_cfcql.envs.base import TeamEnv

Policy = Callable[[TeamEnv, dict, np.random.Generator], np.ndarray]


def _random_available(obs: dict, rng: np.random.Generator, env: TeamEnv | None = None) -> np.ndarray:
    if env is not None and env.team_spec.continuous:
        spec = env.team_spec
        return rng.uniform(-1.0, 1.0, (spec.n_agents, spec.n_actions)).astype(np.float32)
    mask = obs["action_mask"]
    u = rng.random(mask.shape) * mask
    return np.argmax(u, axis=-1)


class BehaviourPolicy:
    def __init__(self, spec: str):
        self.spec = spec
        kind, _, arg = spec.partition(":")
        self.kind = kind
        if kind in ("random", "expert"):
            if arg:
                raise ValueError(f"behaviour policy {spec!r}: {kind!r} takes no argument")
            self.arg = 0.0
        elif kind in ("eps_expert", "mixed_agents", "medium_expert", "slots", "hesitant"):
            try:
                self.arg = float(arg)
            except ValueError:
                raise ValueError(f"behaviour policy {spec!r}: expected {kind}:<probability in [0,1]>") from None
            if not 0.0 <= self.arg <= 1.0:
                raise ValueError(f"behaviour policy {spec!r}: probability must be in [0, 1]")
        elif kind == "checkpoint":
            from rllib_cfcql.behaviour_policies.checkpoint import load_checkpoint_policy

            path, at, tail = arg.rpartition("@") if "@" in arg else (arg, "", "")
            self.mode, self.arg = ("sample", 0.0) if tail == "sample" else ("noise", 0.0)
            if at and tail != "sample":
                try:
                    self.arg = float(tail)
                except ValueError:
                    raise ValueError(f"behaviour policy {spec!r}: expected checkpoint:<path>[@<noise std | eps> | @sample]") from None
            if not path or self.arg < 0.0:
                raise ValueError(f"behaviour policy {spec!r}: expected checkpoint:<path>[@<noise std | eps >= 0> | @sample]")
            self.checkpoint = load_checkpoint_policy(path)  # raises naming the path if missing/malformed
            if not self.checkpoint.continuous and self.arg > 1.0:
                raise ValueError(f"behaviour policy {spec!r}: a discrete policy's @<eps> is a probability, got {self.arg}")
        else:
            raise ValueError(
                f"unknown behaviour policy {spec!r}; expected random, expert, eps_expert:<eps>, mixed_agents:<p>, "
                "medium_expert:<p>, slots:<q>, hesitant:<q> or checkpoint:<path>[@<noise std | eps> | @sample]"
            )
        self._eps = None

    def _require(self, env: TeamEnv, method: str, what: str) -> None:
        """Specs built on a scripted move only some tasks define (``slot_action``, ``hold_action``)."""
        if not hasattr(env, method):
            tasks = "equal_line" if method == "slot_action" else "equal_line and mpe_spread"
            raise ValueError(f"behaviour policy {self.spec!r}: the task {type(env).__name__} has no {what} "
                             f"({self.kind}:<q> is for {tasks})")

    def begin_episode(self, env: TeamEnv, rng: np.random.Generator) -> None:
        n = env.team_spec.n_agents
        if self.kind == "checkpoint":
            self.checkpoint.check_task(env.team_spec)
        if self.kind == "random":
            self._eps = np.ones(n)
        elif self.kind in ("expert", "checkpoint"):
            self._eps = np.zeros(n)
        elif self.kind == "eps_expert":
            self._eps = np.full(n, self.arg)
        elif self.kind == "mixed_agents":
            self._eps = np.where(rng.random(n) < self.arg, 1.0, 0.1)
        elif self.kind == "slots":
            self._require(env, "slot_action", "slots")
            self._eps = np.full(n, 0.1)
            own = rng.random(n) < self.arg
            other = (np.arange(n) + rng.integers(1, n, n)) % n  # uniform over the n−1 other slots
            self._slots = np.where(own, np.arange(n), other)
        elif self.kind == "hesitant":
            self._require(env, "hold_action", "hold action")
            self._eps = np.full(n, 0.1)
        else:
            self._eps = np.full(n, 0.1)
            self._expert = rng.random(n) < self.arg

    def __call__(self, env: TeamEnv, obs: dict, rng: np.random.Generator) -> np.ndarray:
        if self.kind == "checkpoint":
            return self.checkpoint.act_team(obs, rng, self.mode, self.arg)
        rand = _random_available(obs, rng, env)
        if self.kind == "random":
            return rand
        expert = np.asarray(env.slot_action(self._slots) if self.kind == "slots" else env.expert_action())
        continuous = env.team_spec.continuous
        if self.kind == "hesitant":
            move = rng.random(len(expert)) < self.arg
            expert = np.where(move[:, None] if continuous else move, expert, np.asarray(env.hold_action()))
        if self.kind == "medium_expert":
            pick = self._expert[:, None] if continuous else self._expert
            expert = np.where(pick, expert, np.asarray(env.medium_action()))
        if continuous:  # scripted moves carry Gaussian noise (σ = 0.1), like ε = 0.1 random moves
            expert = np.clip(expert + rng.normal(0.0, 0.1, expert.shape), -1.0, 1.0).astype(np.float32)
        explore = rng.random(len(expert)) < self._eps
        return np.where(explore[:, None] if continuous else explore, rand, expert)
