"""Model kinds (one sub-package each), the contract they share, their registry, and the predictor."""
