"""Tracking in MLflow: every step of an l1ml run as an MLflow run, job stores synced once, the model registry.

MLflow is imported inside the functions that talk to a store (it takes a second to import): `l1ml --help` stays instant.
"""
