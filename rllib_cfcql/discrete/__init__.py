"""The discrete variant: per-agent Q networks, the monotonic (QMIX) or additive (VDN) mixer, the
counterfactual / joint / no penalty over each agent's actions, and its learner."""
