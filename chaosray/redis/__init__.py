"""Redis behind Ray's GCS fault tolerance: StatefulSet health, roles, replication, Sentinel."""
