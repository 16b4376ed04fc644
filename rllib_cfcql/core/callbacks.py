"""RLlib callbacks CFCQL runs with by default."""

from __future__ import annotations

from ray.rllib.callbacks.callbacks import RLlibCallback

from rllib_cfcql import keys as K


class TeamMetricsCallback(RLlibCallback):
    """Logs the battle win rate of tasks whose env reports ``info["battle_won"]`` (the ``smax_*``
    maps) as ``env_runners/win_rate`` (in evaluation: ``evaluation/env_runners/win_rate``), the mean
    over the episodes of the reporting window. Tasks without a win flag log nothing.

    A config that sets its own ``callbacks`` can keep this one by subclassing it."""

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
        if metrics_logger is None:
            return
        last = episode.get_infos(-1) if len(episode) else None
        if isinstance(last, dict) and "battle_won" in last:
            metrics_logger.log_value(K.WIN_RATE, float(bool(last["battle_won"])), reduce="mean")
