"""The one definition of where the project's files live: bundled datasets, trained behaviour policies
and the cache of pre-trained behaviour models (β, VAE).

``PROJECT_ROOT`` is, in order: the ``RLLIB_CFCQL_HOME`` environment variable if it is set; the
checkout the package was imported from (an editable install: the folder above ``rllib_cfcql/``)
if it holds ``offline_data/``; else the current directory. A wheel does not package
``offline_data/`` (it is tens of MB of data and checkpoints): users of an installed wheel point
``RLLIB_CFCQL_HOME`` at a checkout or a copy of ``offline_data/``'s parent.

Relative dataset paths in tuned examples and relative checkpoint paths in dataset cards resolve
against ``PROJECT_ROOT`` when they do not exist as given.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "RLLIB_CFCQL_HOME"


def project_root() -> Path:
    """Where ``offline_data/`` is looked for (see the module docstring)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "offline_data").is_dir():
        return checkout
    return Path.cwd()


PROJECT_ROOT = project_root()
#: bundled datasets: ``<OFFLINE_DATA>/<task>/<quality>/``
OFFLINE_DATA = PROJECT_ROOT / "offline_data"
#: trained behaviour policies: ``<POLICY_ROOT>/<task>_<variant>/`` (and ``<task>/`` for HalfCheetah 2x3)
POLICY_ROOT = OFFLINE_DATA / "policies"


def cache_dir() -> Path:
    """Where pre-trained β / VAE weights are cached: ``$RLLIB_CFCQL_CACHE``, else ~/.cache/rllib_cfcql
    (read at each call, so a process may point it elsewhere after import)."""
    return Path(os.environ.get("RLLIB_CFCQL_CACHE", Path.home() / ".cache" / "rllib_cfcql"))
