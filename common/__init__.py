"""The shared layer under every stage (SPM, MSG, baselines, evaluation): device and precision checks."""
