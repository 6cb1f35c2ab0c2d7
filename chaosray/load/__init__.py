"""load domain: activities are added by later issues."""
