"""Ray adapters: tasks pinned to targets, the supernet host actor, Tune trials, the pipeline."""
