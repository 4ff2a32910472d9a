"""MLflow: the store, what a run logs, reading runs back, the UI, and the pyfunc model."""
