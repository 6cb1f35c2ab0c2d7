"""Kubernetes: pods, nodes, PDBs and StatefulSets (counts, readiness, spread, waits, delete, drain, the pod timeline)."""
