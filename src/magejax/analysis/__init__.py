"""Measurements on trained agents: the action-gradient error (Fig. 3) and the LQR ground truth."""
