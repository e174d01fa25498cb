"""llmforge's local backend: everything offline on one machine."""
