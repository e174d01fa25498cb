"""A loopback Databricks REST emulator backed by a local forge.

With ``DATABRICKS_HOST`` pointing at it, unmodified ``databricks-vectorsearch``,
``mlflow.deployments`` and ``databricks-sdk`` code runs offline. FastAPI and uvicorn load only
when a server starts.
"""

from llmforge_emulator.server import serve_emulator, start_emulator

__all__ = ["serve_emulator", "start_emulator"]
