"""The `ensemble` model kind: members of other kinds whose probabilities are averaged with weights chosen on CV."""
