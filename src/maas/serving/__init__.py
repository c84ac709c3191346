"""The server: a transport-neutral data plane behind REST (and, later, gRPC) adapters."""
