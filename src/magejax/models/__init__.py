"""What the agents imagine with: the probabilistic ensemble dynamics model, the learned reward,
and the running normalisation statistics."""
