"""The policies that generate datasets: scripted behaviour specs (``specs``), trained behaviour
policies and their qualities (``qualities``, ``checkpoint``), and the team-as-agents wrapper used to
train them with RLlib PPO (``team_agents``). Not to be confused with β, the behaviour model CFCQL
fits for its λ weights (``rllib_cfcql.core.pretrain``)."""
