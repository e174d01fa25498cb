"""The databricks backend's components, one module each (all light: the Databricks clients
and MLflow load inside the calls that use them)."""

from llmforge_databricks.data import DatabricksDataSource
from llmforge_databricks.generator import DatabricksGenerator
from llmforge_databricks.trainer import DatabricksTrainer
from llmforge_databricks.vector_search import DatabricksVectorSearch

__all__ = ["DatabricksDataSource", "DatabricksGenerator", "DatabricksTrainer", "DatabricksVectorSearch"]
