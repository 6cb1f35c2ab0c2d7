"""The load balancer in front of the Serve proxies: endpoint, health, inference requests, AWS target health."""
