"""Dynamic batching and instance pools: how requests for one version share its runtimes."""
