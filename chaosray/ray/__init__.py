"""Ray on Kubernetes (KubeRay): head and worker pods, RayCluster/RayService status, the Ray dashboard."""
