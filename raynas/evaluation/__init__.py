"""Honest evaluation: baselines compared with NAS, the reproducibility record, the report."""
