"""Feature extractors shared by model kinds."""
