"""The `sentence_encoder` model kind: a frozen sentence encoder, pooled per article, with light heads."""
