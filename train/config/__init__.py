"""Config files: reading YAML into typed objects (`loading`), and the training experiment config (`experiment`)."""
