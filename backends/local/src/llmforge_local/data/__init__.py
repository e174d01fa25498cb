"""Governed Delta tables (deltalake) checked against the embedded catalog."""

from llmforge.components import DataSource


class LocalDataSource(DataSource):
    name = "local"
    description = "Delta tables via deltalake, governed by the embedded SQLite catalog"
