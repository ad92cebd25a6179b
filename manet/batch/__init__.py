"""Batch work over many videos: sequences run as independent tasks, in this process, on local
worker processes, or on a Dask distributed cluster (``manet propagate``, ``manet eval``)."""
