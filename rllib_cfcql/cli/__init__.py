"""The command-line tools: ``rllib train`` / ``rllib-cfcql train`` (``main``, ``tune_run``), the Ray-free
experiment-file parsing (``experiment_file``) and ``rllib-cfcql data`` (``data``)."""
