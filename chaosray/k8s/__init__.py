"""k8s domain: activities are added by later issues."""
