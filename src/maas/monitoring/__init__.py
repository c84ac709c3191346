"""Watching what is served: Prometheus metric families, input drift against a training
reference, alert rules and their notifiers.

Pure mechanisms over numbers and arrays: nothing here knows about HTTP, gRPC, the
registry's tables or how a server is assembled; ``maas.serving`` feeds these and exposes
them.
"""
