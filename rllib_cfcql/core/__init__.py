"""What both variants share: the CFCQL config and Algorithm, the learner-side pre-training loop (β, VAE)
and the config-key rules."""
