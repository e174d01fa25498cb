"""``llmforge quickstart``: the local backend's end-to-end demo, with its sample corpus
(:mod:`llmforge_local.quickstart.sample`) and HTML report."""

from llmforge_local.quickstart.recipe import Assets, assets, run

__all__ = ["Assets", "assets", "run"]
