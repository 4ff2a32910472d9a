"""The `tfidf` model kind: TF-IDF word and character n-grams with a linear classifier per task."""
