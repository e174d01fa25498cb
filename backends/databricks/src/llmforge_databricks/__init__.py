"""llmforge's Databricks backend: the same calls against a Databricks workspace."""
