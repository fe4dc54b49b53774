"""The normative spec and its golden vectors, installed as ``vsaopt.spec`` (data only)."""
