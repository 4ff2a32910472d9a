"""What the commands do: train, evaluate, predict, suggest articles to annotate."""
