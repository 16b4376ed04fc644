"""SMAC / SMACv2 on the real StarCraft II game, for users who have it: task ``smacv2``.

``env_config``: ``map_name`` (a SMAC map such as ``"2s3z"``, or a SMACv2 map such as
``"10gen_protoss"`` with ``capability_config``), ``episode_limit`` (the map's own when unset) and any
other keyword of the game env (``difficulty``, ``seed``, ...), passed through unchanged.

It needs three things, checked before the game starts, and refuses naming what is missing:

* the game: ``$SC2PATH`` (default ``~/StarCraftII``) with the binary ``Versions/Base*/SC2_x64``;
* the maps: ``$SC2PATH/Maps/SMAC_Maps`` (SMAC's map pack);
* the env package: ``smacv2`` (``pip install git+https://github.com/oxwhirl/smacv2``) or the original
  ``smac`` from ``git+https://github.com/oxwhirl/smac`` (module ``smac.env``; the PyPI package named
  ``smac`` is an unrelated hyperparameter optimiser, and is refused as such).

The team interface is that of the ``smax_*`` tasks: per-agent observations, the global state,
SMAC's action masks, the team reward, ``terminated`` when the battle ends, ``truncated`` at the
episode limit (SMAC reports it as ``info["episode_limit"]``), ``info["battle_won"]``. SMAC's action
numbering is its own (0 no-op, only for dead agents; 1 stop; 2–5 move; 6+ attack).
"""

from __future__ import annotations

import glob
import importlib
import os
from pathlib import Path

import numpy as np

from rllib_cfcql.envs.base import TeamEnv, TeamSpec, task_config


def sc2_path() -> Path:
    return Path(os.environ.get("SC2PATH", str(Path.home() / "StarCraftII"))).expanduser()


def find_smac() -> tuple[object | None, list[str]]:
    """(the game-env class, what is missing); the class is None when anything is missing."""
    missing = []
    root = sc2_path()
    if not glob.glob(str(root / "Versions" / "Base*" / "SC2_x64")):
        missing.append(f"the StarCraft II binary {root}/Versions/Base*/SC2_x64 (set SC2PATH to the game's folder)")
    if not (root / "Maps" / "SMAC_Maps").is_dir():
        missing.append(f"SMAC's maps in {root}/Maps/SMAC_Maps")
    cls, tried = None, []
    for mod in ("smacv2.env", "smac.env"):
        try:
            m = importlib.import_module(mod)
        except ImportError:
            tried.append(f"{mod}: not installed")
            continue
        cls = getattr(m, "StarCraft2Env", None)
        if cls is not None:
            break
        tried.append(f"{mod}: has no StarCraft2Env (the PyPI 'smac' is an unrelated hyperparameter optimiser)")
    if cls is None:
        missing.append("the SMAC env package (" + "; ".join(tried) + "): pip install git+https://github.com/oxwhirl/smacv2")
    return (None if missing else cls), missing


class SMACv2TeamEnv(TeamEnv):
    """A SMAC / SMACv2 map on the StarCraft II game as a team (see the module docstring)."""

    def __init__(self, config: dict | None = None):
        config = task_config(config)
        if "map_name" not in config:
            raise ValueError("smacv2: env_config needs map_name, e.g. {'map_name': '2s3z'}")
        cls, missing = find_smac()
        if cls is None:
            raise RuntimeError("smacv2: cannot start StarCraft II; missing: " + "; ".join(missing)
                               + ". Without the game, the smax_* tasks (JaxMARL SMAX) need no binary.")
        limit = config.pop("episode_limit", None)
        self.game = cls(**config)
        info = self.game.get_env_info()
        self.episode_limit = int(limit or info["episode_limit"])
        self._init_spaces(TeamSpec(n_agents=int(info["n_agents"]), obs_dim=int(info["obs_shape"]),
                                   state_dim=int(info["state_shape"]), n_actions=int(info["n_actions"]),
                                   episode_limit=self.episode_limit))
        self.t = 0

    def _observe(self) -> dict:
        return self._pack(np.asarray(self.game.get_obs()), np.asarray(self.game.get_state()),
                          np.asarray(self.game.get_avail_actions()))

    def reset(self, *, seed=None, options=None):
        self.game.reset()
        self.t = 0
        return self._observe(), {"battle_won": False}

    def step(self, action):
        a = self.check_action(action)
        reward, ended, info = self.game.step(a.tolist())
        self.t += 1
        cut = bool(info.get("episode_limit", False)) or (self.t >= self.episode_limit and not ended)
        terminated = bool(ended) and not cut
        return self._observe(), float(reward), terminated, cut, {"battle_won": bool(info.get("battle_won", False))}

    def close(self):
        self.game.close()
