"""Databricks components (filled in by the databricks backend work)."""

from llmforge.components import DataSource, Generator, Trainer, VectorSearch


class DatabricksDataSource(DataSource):
    name = "databricks"
    description = "Unity Catalog tables through the SQL Statement Execution API"


class DatabricksTrainer(Trainer):
    name = "databricks"
    description = "Mosaic AI Model Training (fm.create signature)"


class DatabricksVectorSearch(VectorSearch):
    name = "databricks"
    description = "Databricks Vector Search via databricks-vectorsearch"


class DatabricksGenerator(Generator):
    name = "databricks"
    description = "Model Serving endpoint via mlflow.deployments"
