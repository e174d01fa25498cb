"""Entry point ``databricks``: registers the Databricks component in every slot it fills."""

from llmforge.hookspecs import hookimpl
from llmforge_databricks.components import (
    DatabricksDataSource,
    DatabricksGenerator,
    DatabricksTrainer,
    DatabricksVectorSearch,
)


@hookimpl
def register_data_sources(register):
    register(DatabricksDataSource)


@hookimpl
def register_trainers(register):
    register(DatabricksTrainer)


@hookimpl
def register_indexes(register):
    register(DatabricksVectorSearch)


@hookimpl
def register_generators(register):
    register(DatabricksGenerator)
