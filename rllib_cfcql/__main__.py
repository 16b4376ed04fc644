"""``python -m rllib_cfcql ...`` is the ``rllib-cfcql`` command."""

import sys

from rllib_cfcql.cli.main import cfcql_main

sys.exit(cfcql_main())
