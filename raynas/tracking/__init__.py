"""MLflow tracking: one parent run per experiment, one child run per (target, budget)."""

from raynas.tracking.mlflow_tracker import ExperimentTracker, TrackingError, default_tracking_uri

__all__ = ["ExperimentTracker", "TrackingError", "default_tracking_uri"]
