"""Running and recording: the run driver, its progress callbacks and divergence checks."""
