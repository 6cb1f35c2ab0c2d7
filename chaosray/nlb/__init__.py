"""The load balancer in front of the Serve proxies.

Endpoint, health, inference requests, AWS target health.
"""
