"""The `transformer` model kind: a pretrained encoder (AraBERT) fine-tuned with one head per task."""
