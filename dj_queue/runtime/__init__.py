"""Long-running processes that call the operations layer: supervisor, workers, dispatchers."""
