"""Helpers for tests of maas and projects built on it: tiny models built in code, a real server."""
