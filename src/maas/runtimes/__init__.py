"""Model runtimes: load an artifact, report its signature, predict on a batch of named arrays."""
