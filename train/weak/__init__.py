"""Weak supervision: labelling rules declared in the schema (terms, gazetteers, rules), a label model that combines
their votes, and `taawun weak apply`, which writes silver labels for unlabelled articles."""
