"""Dataset qualities and behaviour schedules.

The qualities follow OMAR / D4RL and the CFCQL paper's appendix C.2:

==============  ===============================================================
random          an untrained (uniform) policy
medium          a partly trained policy, at about half the expert's return
medium-replay   every transition seen while training up to medium
expert          a fully trained policy
mixed           half the episodes from the medium policy, half from the expert
==============  ===============================================================

Task configurations with behaviour policies trained by the project
(``offline_data/policies/<name>/`` with ``name =``
:func:`policy_dir_name`, e.g. ``mpe_tag_continuous`` or
``equal_line_n4_discrete``, written by ``rllib-cfcql behaviour train-shared``:
RLlib PPO, one policy shared by the team; the MPE tasks, discrete and
continuous, and ``equal_line`` with ``n_agents`` 4) map the qualities onto
those checkpoints, each acting by *sampling* its own distribution, as it did while
it was trained (:func:`trained_quality_policy`):

* random → ``random``; expert → ``expert.pt``; medium → ``medium.pt``;
  mixed → medium and expert episodes alternating;
* medium-replay → :class:`CheckpointReplay`: the training run replayed from
  its committed policy sequence (``replay.json``: the policy after every PPO
  iteration, from the untrained one up to ``medium.pt``). The episode that
  starts when a fraction ``x`` of the collection is done is played by the
  policy that was training at env step ``x · N_medium``, so the data has the
  make-up of the training run's replay, and regenerates exactly for a seed.
  (The training script can also write the transitions exactly as they were
  recorded while training: ``--medium-replay-dir``.)

Other tasks and configurations (e.g. ``equal_line`` with another ``n_agents``)
map each quality to the task's scripted behaviour
(:func:`quality_policy`):

* random → ``random``; expert → ``expert`` (the scripted expert; continuous
  tasks add the writer's N(0, 0.1²) action noise);
* medium → a spec chosen per task and action variant by measurement
  (:data:`MEDIUM_SPECS`) so that the data's normalised score
  ``(R − R_random) / (R_expert − R_random)`` is about 0.4–0.5: the task's
  scripted *medium* policy (``medium_expert:0``, itself with ε = 0.1 random
  moves), with extra uniformly random moves (``random_mix:<ε>:medium_expert:0``)
  where the scripted medium alone scores higher. Behaviour cloning on it
  recovers the medium policy, not the expert (unlike ``eps_expert:<ε>``, whose
  most frequent action is the expert's);
* mixed → a schedule alternating medium and expert episodes (even episodes
  medium, odd ones expert);
* medium-replay → a schedule emulating the replay buffer of a training run up
  to medium: the episode that starts when a fraction ``x`` of the collection is
  done is played by ``random_mix:<ε(x)>:<medium base>`` with ε falling linearly
  from 1 (uniform random) at the start to the medium spec's own ε at the end.

HalfCheetah 2x3 maps the same way onto its trained checkpoints (the env's
``expert_action``/``medium_action``, see rllib_cfcql/envs/mamujoco.py), and its
medium-replay is the :class:`CheckpointReplay` of the PPO run that produced
``medium.pt`` (``offline_data/policies/mamujoco_halfcheetah_2x3/replay.json``). Tasks with no
mapping (e.g. the generic ``mamujoco`` task, which has no trained policies) raise :class:`ValueError` naming the task and quality; an
explicit policy spec still works for them.

A *policy* here is anything with ``spec``, ``begin_episode(env, rng)`` and
``__call__(env, obs, rng) -> joint action``: a
:class:`~rllib_cfcql.behaviour_policies.specs.BehaviourPolicy` or a :class:`RandomMix`.
:func:`make_policy` builds one from a spec string; a
:class:`BehaviourSchedule` says which policy plays each episode of a
collection and is what :func:`rllib_cfcql.data.collect.rollout` consumes.
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import numpy as np

from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.envs.base import TeamEnv
from rllib_cfcql.paths import POLICY_ROOT, PROJECT_ROOT

QUALITIES = ("random", "medium", "medium-replay", "expert", "mixed")

#: the medium spec per (task, action variant), chosen by measurement (50 episodes,
#: default env_config); the comments give the data's normalised score.
MEDIUM_SPECS: dict[tuple[str, str], str] = {
    ("equal_line", "discrete"): "medium_expert:0",  # 0.38 (return 4.9 of the expert's 10)
    ("mpe_spread", "discrete"): "random_mix:0.6:medium_expert:0",  # 0.51 (the scripted medium alone: 0.76)
    ("mpe_spread", "continuous"): "random_mix:0.5:medium_expert:0",  # 0.50 (the scripted medium alone: 0.66)
    ("mpe_tag", "discrete"): "medium_expert:0",  # 0.42
    ("mpe_tag", "continuous"): "medium_expert:0",  # 0.36
    ("mpe_world", "discrete"): "medium_expert:0",  # 0.53
    ("mpe_world", "continuous"): "medium_expert:0",  # 0.54
    # the trained medium checkpoint (offline_data/policies/...) with ε = 0.1 random moves:
    # 0.47 on the bundled data (return 496 between random −285 and expert 1382; the medium.pt of the
    # --medium-only run, deterministic eval 751 ± 46)
    ("mamujoco_halfcheetah_2x3", "continuous"): "medium_expert:0",
}

RANDOM_MIX = "random_mix"


def _uniform_action(env: TeamEnv, obs: dict, rng: np.random.Generator) -> np.ndarray:
    spec = env.team_spec
    if spec.continuous:
        return rng.uniform(-1.0, 1.0, (spec.n_agents, spec.n_actions)).astype(np.float32)
    return np.argmax(rng.random(obs["action_mask"].shape) * obs["action_mask"], axis=-1)


class RandomMix:
    """``random_mix:<eps>:<base spec>``: per agent and step, a uniformly random (available)
    action with probability ``eps``, else the action of the base policy (any spec
    :class:`~rllib_cfcql.behaviour_policies.specs.BehaviourPolicy` accepts)."""

    def __init__(self, base: str, eps: float):
        eps = float(eps)
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"behaviour policy {RANDOM_MIX}:{eps}:{base}: eps must be in [0, 1], got {eps}")
        self.base = BehaviourPolicy(base)
        self.eps = eps
        self.spec = f"{RANDOM_MIX}:{round(eps, 4):g}:{base}"

    def begin_episode(self, env: TeamEnv, rng: np.random.Generator) -> None:
        self.base.begin_episode(env, rng)

    def __call__(self, env: TeamEnv, obs: dict, rng: np.random.Generator) -> np.ndarray:
        a = np.asarray(self.base(env, obs, rng))
        rand = _uniform_action(env, obs, rng)
        explore = rng.random(env.team_spec.n_agents) < self.eps
        if env.team_spec.continuous:
            return np.where(explore[:, None], rand, a).astype(np.float32)
        return np.where(explore, rand, a)


def make_policy(spec: str):
    """A policy from its spec: ``random_mix:<eps>:<base>`` or any spec of
    :class:`~rllib_cfcql.behaviour_policies.specs.BehaviourPolicy`."""
    if not isinstance(spec, str):
        raise TypeError(f"a behaviour policy spec must be a string, got {type(spec).__name__}: {spec!r}")
    kind, _, rest = spec.partition(":")
    if kind == RANDOM_MIX:
        eps, _, base = rest.partition(":")
        try:
            e = float(eps)
        except ValueError:
            e = None
        if e is None or not base:
            raise ValueError(f"behaviour policy {spec!r}: expected {RANDOM_MIX}:<eps in [0,1]>:<base policy spec>")
        return RandomMix(base, e)
    return BehaviourPolicy(spec)


# ---------------------------------------------------------------------------------- schedules
def _clamp01(progress: float) -> float:
    return min(max(float(progress), 0.0), 1.0)


class BehaviourSchedule:
    """Which policy plays each episode of a collection.

    ``policy_for(k, progress)`` gets the episode index ``k`` and the fraction of the
    collection done before it (``k / episodes``, or ``transitions / steps`` when collecting
    a number of steps), in [0, 1). ``description`` is recorded in the dataset card.
    """

    description: str = ""

    def policy_for(self, k: int, progress: float):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class FixedBehaviour(BehaviourSchedule):
    """The same policy for every episode."""

    def __init__(self, policy):
        self.policy = make_policy(policy) if isinstance(policy, str) else policy
        self.description = self.policy.spec

    def policy_for(self, k: int, progress: float):
        return self.policy


class AlternatingBehaviour(BehaviourSchedule):
    """Episode ``k`` is played by ``specs[k % len(specs)]`` (``mixed``: medium, expert, medium, …)."""

    def __init__(self, specs: list[str], label: str = "alternating"):
        if not specs:
            raise ValueError("AlternatingBehaviour: at least one policy spec is required")
        self.policies = [make_policy(s) for s in specs]
        self.description = f"{label}: episode k played by [{', '.join(p.spec for p in self.policies)}][k mod {len(specs)}]"

    def policy_for(self, k: int, progress: float):
        return self.policies[k % len(self.policies)]


class RandomToBehaviour(BehaviourSchedule):
    """``random_mix:<ε>:<base>`` with ε falling linearly from ``eps_start`` (at progress 0)
    to ``eps_end`` (at progress 1): a training run's replay buffer from random to ``base``."""

    def __init__(self, base: str, eps_end: float = 0.0, eps_start: float = 1.0, label: str = "random-to"):
        for name, v in (("eps_start", eps_start), ("eps_end", eps_end)):
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"RandomToBehaviour: {name} must be in [0, 1], got {v}")
        BehaviourPolicy(base)  # validates the base spec now, not at the first episode
        self.base, self.eps_start, self.eps_end = base, float(eps_start), float(eps_end)
        self.description = (
            f"{label}: episode played by {RANDOM_MIX}:<eps>:{base} with eps = {self.eps_start:g} - "
            f"{self.eps_start - self.eps_end:g} * progress ({self.eps_start:g} -> {self.eps_end:g}; progress = "
            "fraction of the collection done before the episode)"
        )

    def eps(self, progress: float) -> float:
        x = _clamp01(progress)
        return self.eps_start + (self.eps_end - self.eps_start) * x

    def policy_for(self, k: int, progress: float):
        return RandomMix(self.base, self.eps(progress))


class CheckpointReplay(BehaviourSchedule):
    """A training run's replay, replayed from its committed policy sequence.

    ``manifest`` is a ``replay.json`` written by ``rllib-cfcql behaviour train-shared``:
    ``{"medium_env_steps": N, "checkpoints": [{"file": ..., "env_steps": s_k}, ...]}`` with
    ``s_0 = 0`` (the untrained policy) and files relative to the manifest's directory. The
    episode starting at collection progress ``x`` is played by checkpoint ``k`` with
    ``s_k <= x·N < s_{k+1}``, sampling from its distribution (``checkpoint:<file>@sample``).
    """

    def __init__(self, manifest: str | Path, label: str = "medium-replay (PPO training replay up to medium)"):
        path = Path(manifest)
        try:
            data = json.loads(path.read_text())
            entries = sorted(data["checkpoints"], key=lambda c: int(c["env_steps"]))
            total = int(data["medium_env_steps"])
            steps = [int(c["env_steps"]) for c in entries]
            files = [path.parent / c["file"] for c in entries]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"replay manifest {str(path)!r}: expected JSON with 'medium_env_steps' and "
                             f"'checkpoints' [{{'file', 'env_steps'}}], got an error: {e}") from None
        if not entries or steps[0] > 0 or total <= 0:
            raise ValueError(f"replay manifest {str(path)!r}: the checkpoints must start at env step 0 and "
                             f"medium_env_steps must be > 0 (got steps {steps[:3]}..., medium_env_steps {total})")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ValueError(f"replay manifest {str(path)!r}: checkpoint files missing: {missing[:3]}")
        self.steps, self.total = steps, total
        self.specs = [f"checkpoint:{_display_path(f)}@sample" for f in files]
        self._policies: dict[int, BehaviourPolicy] = {}
        self.description = (
            f"{label}: the episode starting at progress x is played by the PPO checkpoint that was training at env "
            f"step x*{total} (of {len(files)} checkpoints, one per PPO iteration, listed in {_display_path(path)}), "
            "sampling from its distribution"
        )

    def index(self, progress: float) -> int:
        x = _clamp01(progress)
        return max(bisect.bisect_right(self.steps, x * self.total) - 1, 0)

    def policy_for(self, k: int, progress: float):
        i = self.index(progress)
        if i not in self._policies:
            self._policies[i] = BehaviourPolicy(self.specs[i])
        return self._policies[i]


def as_schedule(policy) -> BehaviourSchedule:
    """A schedule from a spec string, a policy object or a schedule."""
    if isinstance(policy, BehaviourSchedule):
        return policy
    return FixedBehaviour(policy)


# ---------------------------------------------------------------------------------- qualities
def _variant(env_config: dict | None) -> str:
    return "continuous" if bool((env_config or {}).get("continuous_actions", False)) else "discrete"


def _split_mix(spec: str) -> tuple[str, float]:
    """(base spec, eps) of a medium spec: ``random_mix:<eps>:<base>`` or a plain base (eps 0)."""
    if spec.startswith(RANDOM_MIX + ":"):
        p = make_policy(spec)
        return p.base.spec, p.eps
    return spec, 0.0


TRAINED_FILES = ("expert.pt", "medium.pt", "replay.json")


def _display_path(path: Path) -> str:
    """``path`` relative to the project root when it is inside it (what cards record), else as is."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def policy_dir_name(task: str, env_config: dict | None = None) -> str:
    """The directory name of a task configuration's trained policies: ``<task>[_<setting>...]_<variant>``.

    ``continuous_actions`` gives the variant; every other env_config key is part of the name
    (``n_agents`` as ``n<N>``, a true flag by its key, other values as ``<key>-<value>``; false and
    None values are left out), so ``equal_line`` with ``{"n_agents": 4}`` is ``equal_line_n4_discrete``
    and ``mpe_spread`` with ``{"continuous_actions": true}`` is ``mpe_spread_continuous``."""
    parts = [task]
    for k, v in sorted((env_config or {}).items()):
        if k == "continuous_actions" or v is None or v is False:
            continue
        if k == "n_agents":
            parts.append(f"n{int(v)}")
        elif v is True:
            parts.append(str(k))
        else:
            parts.append(f"{k}-{v}")
    parts.append(_variant(env_config))
    return "_".join(parts)


def trained_policy_dir(task: str, env_config: dict | None = None) -> Path | None:
    """``offline_data/policies/<policy_dir_name(task, env_config)>`` when it holds trained expert,
    medium and replay policies (``rllib-cfcql behaviour train-shared``) that fit the task as
    configured (same agents, observation and action shapes), else None."""
    from rllib_cfcql.behaviour_policies.checkpoint import (
        CheckpointError,
        load_checkpoint_policy,
    )
    from rllib_cfcql.envs import make_team_env

    d = POLICY_ROOT / policy_dir_name(task, env_config)
    if not all((d / f).is_file() for f in TRAINED_FILES):
        return None
    try:
        load_checkpoint_policy(d / "expert.pt").check_task(make_team_env(task, env_config).team_spec)
    except CheckpointError:
        return None  # e.g. more agents than the policies were trained for
    return d


SOURCES = ("auto", "trained", "scripted")


def _trained_for(task: str, env_config: dict | None, source: str) -> Path | None:
    if source not in SOURCES:
        raise ValueError(f"behaviour source {source!r}: expected one of {list(SOURCES)}")
    if source == "scripted":
        return None
    d = trained_policy_dir(task, env_config)
    if d is None and source == "trained":
        raise ValueError(
            f"task {task!r} ({_variant(env_config)} actions, env_config {env_config or {}}) has no trained behaviour "
            f"policies that fit it: expected {TRAINED_FILES} in {_display_path(POLICY_ROOT / policy_dir_name(task, env_config))} "
            "(train them with `rllib-cfcql behaviour train-shared`), or use the scripted behaviours"
        )
    return d


def trained_quality_policy(policy_dir: Path, quality: str):
    """The behaviour of a quality from a directory of trained policies (see the module doc)."""
    expert = f"checkpoint:{_display_path(policy_dir / 'expert.pt')}@sample"
    medium = f"checkpoint:{_display_path(policy_dir / 'medium.pt')}@sample"
    if quality == "random":
        return "random"
    if quality == "expert":
        return expert
    if quality == "medium":
        return medium
    if quality == "mixed":
        return AlternatingBehaviour([medium, expert], label="mixed (half medium, half expert)")
    return CheckpointReplay(policy_dir / "replay.json")


def reference_expert(task: str, env_config: dict | None = None, source: str = "auto") -> str:
    """The policy whose mean return is a task's *expert* reference: the trained expert
    (sampled, as in the expert datasets) where the task has trained policies and ``source``
    allows them, else the task's own ``expert`` (scripted, or HalfCheetah's checkpoint)."""
    d = _trained_for(task, env_config, source)
    return trained_quality_policy(d, "expert") if d is not None else "expert"


def quality_policy(task: str, quality: str, env_config: dict | None = None, source: str = "auto"):
    """The behaviour that makes a ``quality`` dataset of ``task``: a policy spec string
    (random, medium, expert) or a :class:`BehaviourSchedule` (mixed, medium-replay).
    ``env_config`` picks the action variant (``continuous_actions``). ``source``: ``auto``
    (the trained policies where the task has them, else scripted), ``trained`` (an error
    without them) or ``scripted``."""
    if quality not in QUALITIES:
        raise ValueError(f"unknown quality {quality!r}; expected one of {list(QUALITIES)}")
    trained = _trained_for(task, env_config, source)
    if trained is not None:
        return trained_quality_policy(trained, quality)
    variant = "continuous" if task.startswith("mamujoco") else _variant(env_config)
    medium = MEDIUM_SPECS.get((task, variant))
    if medium is None:
        known = sorted({f"{t} ({v})" for t, v in MEDIUM_SPECS})
        raise ValueError(
            f"quality {quality!r} of task {task!r} ({variant} actions): no scripted behaviour is mapped for this "
            f"task (its qualities come from trained policies); pass an explicit behaviour policy instead. "
            f"Tasks with scripted qualities: {', '.join(known)}"
        )
    if quality == "random":
        return "random"
    if quality == "expert":
        return "expert"
    if quality == "medium":
        return medium
    if quality == "mixed":
        return AlternatingBehaviour([medium, "expert"], label="mixed (half medium, half expert)")
    manifest = POLICY_ROOT / task / "replay.json"  # a centralised trained run's sequence (HalfCheetah 2x3)
    if source != "scripted" and manifest.is_file():
        return CheckpointReplay(manifest)
    base, eps = _split_mix(medium)
    return RandomToBehaviour(base, eps_end=eps, label="medium-replay (random -> medium)")


def describe(policy) -> str:
    """The card's text for a spec string, a policy or a schedule."""
    if isinstance(policy, str):
        return policy
    if isinstance(policy, BehaviourSchedule):
        return policy.description
    return policy.spec


def evaluate_checkpoint(path: str | Path, task: str, env_config: dict, episodes: int, seed: int,
                        mode: str = "mean") -> list[float]:
    """Team returns of ``episodes`` episodes of ``task`` (reset seeds ``seed + k``) with the
    checkpoint acting in ``mode`` (:meth:`CheckpointPolicy.act_team`; sampling uses
    ``numpy.random.default_rng(seed)``): deterministic for its arguments, which is how the
    training script's recorded evaluation returns can be checked later."""
    from rllib_cfcql.behaviour_policies.checkpoint import load_checkpoint_policy
    from rllib_cfcql.envs import make_team_env

    pol = load_checkpoint_policy(path)
    env = make_team_env(task, env_config)
    pol.check_task(env.team_spec)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        ret, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(pol.act_team(obs, rng, mode))
            ret += r
            done = term or trunc
        out.append(float(ret))
    return out
