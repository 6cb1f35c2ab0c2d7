"""The real-process test rig: fixtures that start and stop real components."""
