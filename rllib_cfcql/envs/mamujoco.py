"""Multi-agent MuJoCo (gymnasium-robotics ``mamujoco_v1``) as team tasks.

A MaMuJoCo task splits the joints of a Gymnasium MuJoCo robot (``<scenario>-v5``)
between agents (``agent_conf``, e.g. HalfCheetah ``"2x3"``: agent_0 drives the
back leg — bthigh, bshin, bfoot = joint actions 0..2 — and agent_1 the front
leg, actions 3..5). Agent ``i`` observes its own joints and those within
``agent_obsk`` hops of them; the global ``state`` is the single-agent robot's
observation (for HalfCheetah the 17-dim ``HalfCheetah-v5`` observation).

* Action: ``Box(-1, 1, (n_agents, d))``, mapped linearly onto each agent's box
  (most robots already act in [-1, 1]); agents with fewer actuators are
  zero-padded to ``d`` (the padding is ignored), as are smaller observations.
* Team reward: the shared reward of the robot (every agent receives the same).
* Episode length: ``episode_limit`` (alias ``max_episode_steps``; default 1000,
  the Gymnasium time limit). Reaching it ends the episode with
  ``truncated=True, terminated=False``, so value targets *bootstrap* through
  it; ``terminated=True`` only when the robot itself terminates (e.g. an
  unhealthy Hopper/Walker2d/Ant). HalfCheetah never terminates: every episode
  is exactly ``episode_limit`` steps.

Tasks (``rllib_cfcql.envs.TASKS``):

* ``mamujoco_halfcheetah_2x3``: HalfCheetah 2x3 (n=2, obs 12, state 17, d=3).
  Its ``expert_action``/``medium_action`` are policies trained online with
  RLlib's PPO (``rllib-cfcql behaviour train-centralised``), committed as small checkpoints
  in ``offline_data/policies/mamujoco_halfcheetah_2x3/{expert,medium}.pt``
  (deterministic eval returns over 1000 steps: expert ≈ 1585, medium ≈ 751,
  the latter from a second run whose every PPO iteration is kept for the
  medium-replay quality; uniform random ≈ −300).
* ``mamujoco``: any scenario / agent_conf by name (no scripted policies).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rllib_cfcql.envs.base import task_config
from rllib_cfcql.envs.pettingzoo_team import PettingZooTeamEnv
from rllib_cfcql.paths import POLICY_ROOT


def _import_gymnasium_robotics() -> None:
    """Imports gymnasium_robotics without the release notice it prints to stderr in every process
    (gymnasium-robotics 1.4.2: a note on its Adroit hand tasks, which no team task uses); anything
    else it prints is passed on."""
    import sys

    if "gymnasium_robotics" in sys.modules:
        return
    import contextlib
    import io

    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf):
            import gymnasium_robotics
        try:
            from farama_notifications import notifications

            notice = notifications.get("gymnasium_robotics", {}).get(gymnasium_robotics.__version__, "")
        except Exception:  # noqa: BLE001 - no notices package: nothing to filter
            notice = ""
    finally:
        text = buf.getvalue()
    if notice:
        text = text.replace(notice + "\n", "").replace(notice, "")
    if text.strip():
        sys.stderr.write(text)

#: Where the committed behaviour-policy checkpoints live (relative to the package source tree).

_DEFAULTS = {"scenario": "HalfCheetah", "agent_conf": "2x3", "agent_obsk": 1, "episode_limit": 1000}


def _mamujoco_kwargs(config: dict | None, name: str, fixed: dict | None = None) -> dict:
    """Validate an env_config: unknown keys are rejected by name; ``max_episode_steps``
    is an alias of ``episode_limit``; ``fixed`` keys may be given only with their fixed value."""
    config = task_config(config)
    fixed = dict(fixed or {})
    if "max_episode_steps" in config:
        alias = config.pop("max_episode_steps")
        if "episode_limit" in config and int(config["episode_limit"]) != int(alias):
            raise ValueError(
                f"{name}: env_config has episode_limit={config['episode_limit']!r} and "
                f"max_episode_steps={alias!r}; give one (they are aliases)"
            )
        config["episode_limit"] = alias
    for k, v in fixed.items():
        if k in config and config.pop(k) != v:
            raise ValueError(f"{name}: env_config key {k!r} is fixed to {v!r} for this task; use task 'mamujoco' for others")
    allowed = {k: v for k, v in _DEFAULTS.items() if k not in fixed}
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(
            f"{name}: unknown env_config keys {unknown}; expected {sorted(allowed) + ['max_episode_steps']}"
        )
    kw = {}
    for k, default in allowed.items():
        v = config.get(k, default)
        try:
            kw[k] = type(default)(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: env_config {k}={v!r} is not a valid {type(default).__name__}") from None
        if isinstance(default, int) and isinstance(v, float) and v != int(v):
            raise ValueError(f"{name}: env_config {k}={v!r} must be an integer")
    kw.update(fixed)
    if kw["episode_limit"] < 1:
        raise ValueError(f"{name}: episode_limit must be >= 1, got {kw['episode_limit']}")
    if kw["agent_obsk"] < 0:
        raise ValueError(f"{name}: agent_obsk must be >= 0, got {kw['agent_obsk']}")
    return kw


class MaMuJoCoEnv(PettingZooTeamEnv):
    """Any ``mamujoco_v1`` scenario / agent_conf as a continuous team task.

    env_config: ``scenario`` (default ``"HalfCheetah"``), ``agent_conf`` (``"2x3"``),
    ``agent_obsk`` (1), ``episode_limit`` or ``max_episode_steps`` (1000).
    """

    task_name = "mamujoco"
    _fixed: ClassVar[dict] = {}

    def __init__(self, config: dict | None = None):
        kw = _mamujoco_kwargs(config, self.task_name, self._fixed)
        self.env_kwargs = kw
        self.episode_limit = int(kw["episode_limit"])
        _import_gymnasium_robotics()
        from gymnasium_robotics import mamujoco_v1
        from gymnasium_robotics.envs.multiagent_mujoco import mujoco_multi

        scenario, conf = kw["scenario"], kw["agent_conf"]
        extra = {}
        if scenario == "CoupledHalfCheetah":  # fixed 1000-step TimeLimit inside gymnasium-robotics
            if self.episode_limit > 1000:
                raise ValueError(f"{self.task_name}: CoupledHalfCheetah supports episode_limit <= 1000, got {self.episode_limit}")
        else:  # every other scenario is built with gymnasium.make(...): give it our time limit
            extra["max_episode_steps"] = self.episode_limit
        known = list(mujoco_multi._MUJOCO_GYM_ENVIROMENTS) + ["ManySegmentAnt", "ManySegmentSwimmer", "CoupledHalfCheetah"]
        if scenario not in known:
            raise ValueError(f"{self.task_name}: unknown scenario {scenario!r}; expected one of {known}")

        def make():
            try:
                return mamujoco_v1.parallel_env(scenario, conf, agent_obsk=kw["agent_obsk"], **extra)
            except Exception as e:  # gymnasium-robotics raises bare Exceptions for bad configs
                raise ValueError(f"{self.task_name}: cannot build scenario={scenario!r} agent_conf={conf!r}: {e}") from e

        super().__init__(make, episode_limit=self.episode_limit)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        self._t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self._t += 1
        if self._t >= self.episode_limit and not terminated:
            truncated = True  # time limit: bootstrap, not terminal
        return obs, reward, terminated, truncated, info

    def _no_scripted(self, which: str):
        raise NotImplementedError(
            f"{self.task_name} {self.env_kwargs['scenario']} {self.env_kwargs['agent_conf']}: no {which} policy; "
            "use task 'mamujoco_halfcheetah_2x3' or a 'checkpoint:<path>' behaviour policy"
        )

    def expert_action(self) -> np.ndarray:
        self._no_scripted("expert")

    def medium_action(self) -> np.ndarray:
        self._no_scripted("medium")


class MaMuJoCoHalfCheetah2x3Env(MaMuJoCoEnv):
    """HalfCheetah 2x3: two agents (back / front leg), obs 12 each, state 17, d = 3.

    env_config: ``agent_obsk`` (1), ``episode_limit`` / ``max_episode_steps`` (1000).
    ``expert_action()`` / ``medium_action()`` act from the team state with the
    committed PPO checkpoints ``expert.pt`` / ``medium.pt`` (deterministic;
    the behaviour-policy specs add their own noise).
    """

    task_name = "mamujoco_halfcheetah_2x3"
    _fixed: ClassVar[dict] = {"scenario": "HalfCheetah", "agent_conf": "2x3"}
    policy_dir = POLICY_ROOT / "mamujoco_halfcheetah_2x3"

    def _checkpoint_action(self, name: str) -> np.ndarray:
        from rllib_cfcql.behaviour_policies.checkpoint import load_checkpoint_policy

        pol = load_checkpoint_policy(self.policy_dir / f"{name}.pt")
        return pol.mean_action(np.asarray(self.par_env.state(), np.float32))

    def expert_action(self) -> np.ndarray:
        """The committed expert checkpoint (best SAC evaluation)."""
        return self._checkpoint_action("expert")

    def medium_action(self) -> np.ndarray:
        """The committed medium checkpoint (eval return closest to half the expert's)."""
        return self._checkpoint_action("medium")
