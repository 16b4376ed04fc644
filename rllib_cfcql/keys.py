"""Named keys shared by the data schema, the RLModule and the Learner.

Every batch column, forward output and logged metric is defined once here.
"""

# ---- Team observation (the gymnasium Dict observation of a TeamEnv) ----
OBS = "obs"  # [n_agents, obs_dim] per-agent observations
STATE = "state"  # [state_dim] global state
ACTION_MASK = "action_mask"  # [n_agents, n_actions] 1 = available

# ---- Dataset columns (one row per team step) ----
EPISODE_ID = "episode_id"
T = "t"
ACTIONS = "actions"  # [n_agents] joint action
REWARD = "reward"  # team reward
TERMINATED = "terminated"
TRUNCATED = "truncated"
NEXT_OBS = "next_obs"
NEXT_STATE = "next_state"
NEXT_ACTION_MASK = "next_action_mask"

STEP_COLUMNS = (
    EPISODE_ID,
    T,
    OBS,
    STATE,
    ACTION_MASK,
    ACTIONS,
    REWARD,
    TERMINATED,
    TRUNCATED,
    NEXT_OBS,
    NEXT_STATE,
    NEXT_ACTION_MASK,
)

# ---- Learner train batch (padded episodes, time-major after the batch axis) ----
# obs/state/action_mask carry T+1 steps (the last one is the bootstrap step).
FILLED = "filled"  # [B, T] 1 for real steps, 0 for padding

# ---- RLModule forward_train outputs ----
Q_AGENTS = "q_agents"  # [B, T+1, n, A] online per-agent utilities
Q_TOT_TAKEN = "q_tot_taken"  # [B, T] Q_tot(s_t, a_t^D)
TARGET_Q_TOT_NEXT = "target_q_tot_next"  # [B, T] target Q_tot(s_{t+1}, argmax online)
CF_Q_TOT = "cf_q_tot"  # [B, T, n, A] Q_tot(s_t, a^D with slot i := j)
JOINT_Q_TOT = "joint_q_tot"  # [N, B, T] Q_tot at sampled joint actions
JOINT_LOG_COUNT = "joint_log_count"  # [B, T] log |available joint actions|
TARGET_Q_AGENTS = "target_q_agents"  # [B, T+1, n, A] cached target utilities (optional)
BEHAVIOUR_LOGITS = "behaviour_logits"  # [B, T, n, A] beta (frozen BC model)

# ---- continuous variant (transitions: B states; K = 2 twin critics; M samples) ----
# step flags the learner puts in each batch (python bools)
ACTOR_STEP = "actor_step"  # this step also updates the actors
ACTOR_BC = "actor_bc"  # continuous: this actor step clones the data (actor_bc_warmup)
TOUCH_ACTOR = "touch_actor"  # run the actors even on critic-only steps (DDP needs every parameter used)
PI_ACTIONS = "pi_actions"  # [B, n, d] current actors' actions (with gradient)
PI_PREACT = "pi_preact"  # [B, n, d] the actors' outputs before tanh (with gradient)
Q_DATA = "q_data"  # [K, B] central / [K, B, n] independent critics at the data actions
TARGET_Q_NEXT = "target_q_next"  # [K, B] / [K, B, n] target critics at (s', smoothed target actions)
CF_Q = "cf_q"  # [K, M, B, n] Q with agent i's slot at sample m, others at the data
JOINT_Q = "joint_q"  # [K, M, B] Q at sampled joint actions (MACQL)
IND_Q = "ind_q"  # [K, M, B, n] independent critics at sampled own actions (ICQL/OMAR)
SAMPLE_LOG_DENSITY = "sample_log_density"  # log density of each sample's proposal
LAMBDA = "lambda"  # [B, n] counterfactual weights
ACTOR_Q = "actor_q"  # [B, n] or [B] Q1 at the actors' actions (through detached critic weights)
OMAR_TARGET = "omar_target"  # [B, n, d] OMAR's rectified actions

# ---- Metrics ----
TD_LOSS = "td_loss"
PENALTY = "penalty"
CQL_LOSS = "cql_loss"
BC_LOSS = "bc_loss"
Q_TOT_MEAN = "q_tot_mean"
TARGET_MEAN = "target_mean"
CRITIC_LOSS = "critic_loss"
ACTOR_LOSS = "actor_loss"
Q_DATA_MEAN = "q_data_mean"
ACTOR_Q_MEAN = "actor_q_mean"
LAMBDA_ENTROPY = "lambda_entropy"
LAMBDA_MAX = "lambda_max"
BETA_ACCURACY = "beta_accuracy"
POLICY_ACCURACY = "policy_accuracy"
NUM_GRAD_STEPS = "num_grad_steps_lifetime"
NUM_TARGET_UPDATES = "num_target_updates_lifetime"
NORMALIZED_SCORE = "normalized_score"
#: battle win rate over the evaluation episodes, on tasks whose env reports ``info["battle_won"]`` (SMAX)
WIN_RATE = "win_rate"
PENALTY_TO_TD = "penalty_to_td"  # α·penalty / TD loss of the step
MC_RETURN = "mc_return"  # [E, T] discounted return-to-go of each dataset step (store extra)
# diagnostics on a fixed set of dataset episodes, once per iteration (rllib_cfcql.diagnostics)
DIAG_Q_DATA = "diag_q_data"
DIAG_MC_RETURN = "diag_mc_return"
DIAG_Q_MINUS_MC = "diag_q_minus_mc"
DIAG_TAIL_WEIGHT = "diag_tail_weight"
DIAG_Q_MINUS_MC_RESOLVED = "diag_q_minus_mc_resolved"
DIAG_Q_GREEDY = "diag_q_greedy"
DIAG_GREEDY_IN_DATA = "diag_greedy_in_data"
DIAG_Q_GREEDY_MINUS_MC = "diag_q_greedy_minus_mc"
DIAG_AGENT_AGREEMENT = "diag_agent_agreement"
DIAG_ACTOR_SATURATION = "diag_actor_saturation"
DIAG_BETA_SUPPORT = "diag_beta_support"
DIAG_BETA_PROB = "diag_beta_prob"
SAMPLE_TIME = "learner_sample_time_s"  # time drawing minibatches in the learner, per iteration
UPDATE_TIME = "learner_update_time_s"  # time in forward/backward/optimiser, per iteration
