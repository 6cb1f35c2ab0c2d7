"""Kubernetes: pods, nodes, PDBs and StatefulSets.

Counts, readiness, spread, waits, delete, drain, the pod timeline.
"""
