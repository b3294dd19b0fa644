"""Ray building blocks that strategies and the pipeline run: actors, tasks, Tune trainables, the cluster checks."""
