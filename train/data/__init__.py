"""Dataset building: config, readers, annotations and agreement, splits, the build itself and its report."""
