"""The continuous variant: the counterfactual centralised twin critic, deterministic actors, the
sampled counterfactual penalty, its learner (two optimisers, delayed actor, Polyak targets)."""
