"""Entry point ``local``: registers the local component in every slot it fills."""

from llmforge.hookspecs import hookimpl
from llmforge_local.data import LocalDataSource
from llmforge_local.generate import LocalGenerator
from llmforge_local.index import LocalVectorSearch
from llmforge_local.train import LocalTrainer


@hookimpl
def register_data_sources(register):
    register(LocalDataSource)


@hookimpl
def register_trainers(register):
    register(LocalTrainer)


@hookimpl
def register_indexes(register):
    register(LocalVectorSearch)


@hookimpl
def register_generators(register):
    register(LocalGenerator)


@hookimpl
def register_commands(cli):
    from llmforge_local.commands import add_quickstart

    add_quickstart(cli)
