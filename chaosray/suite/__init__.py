"""The suite orchestrator behind `chaosray suite run`."""
