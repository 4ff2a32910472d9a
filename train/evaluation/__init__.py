"""Evaluation for every model kind: metrics, plots, artifact files, terminal tables, scoring a split."""
