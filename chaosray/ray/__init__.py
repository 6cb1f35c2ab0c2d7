"""Ray on Kubernetes (KubeRay).

Head and worker pods, RayCluster/RayService status, the Ray dashboard.
"""
