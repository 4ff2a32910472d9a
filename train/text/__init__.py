"""Text processing shared by every stage: cleaning and Arabic normalization, duplicate detection."""
