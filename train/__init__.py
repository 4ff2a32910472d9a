"""taawun: train and evaluate classifiers of Arabic news articles, driven by a labeling schema."""

__version__ = "0.1.0"
