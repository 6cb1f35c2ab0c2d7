"""kwok extras for the test cluster: pod logs, port-forwards and a local
"container runtime", so that a k6 Job pod can really run k6.

kwok-controller plays the kubelets' API, but it runs no container. Three
things close the gap for the tests of the in-cluster K6 modes:

1. :data:`KWOKCTL_CONFIG` (written by :func:`write_kwokctl_config` as the
   kwokctl default config ``$KWOK_WORKDIR/kwok.yaml`` before
   ``kwokctl create cluster``) enables kwok's ``Logs``/``ClusterLogs`` and
   ``PortForward``/``ClusterPortForward`` CRDs, so the API server's
   ``pods/log`` and ``pods/portforward`` reach kwok-controller's kubelet port
   (nodes publish ``Hostname: localhost`` and that port), and kwok serves a
   file on this host as a pod's log and forwards a pod's port to a local
   address. Its stages are kwok v0.8.0's defaults (node-initialize,
   node-heartbeat-with-lease, pod-ready, pod-complete, pod-delete; Apache-2.0,
   copied verbatim) with one change: ``pod-complete`` leaves alone the Job
   pods annotated :data:`CONTAINER_ANNOTATION`, instead of completing every
   Job pod the moment it runs.
2. :class:`LocalContainers` is the container runtime for those annotated
   pods: when one is Running it reads the pod's own spec (command, env, the
   ConfigMap volumes, read through the API), runs that command here (``k6``
   is the real binary of the ``k6`` package) with the pod's environment,
   writes its stdout/stderr in the CRI log format to the file kwok serves as
   the pod's log, forwards the pod's ``--address`` port to the local one, and
   when the process exits writes its real exit code into the pod's status, as
   a kubelet would. Deleting the pod sends SIGTERM to the process.
3. :data:`TESTRUN_CRD`: the k6-operator's ``testruns.k6.io`` CRD, as a subset
   of the real v1.6.0 schema (the fields chaosray sets, verbatim; Apache-2.0).
   The Go module proxy does not serve github.com/grafana/k6-operator, so the
   full CRD cannot be fetched at test time; the API server prunes fields the
   subset does not know, so a misspelt field shows up as missing. No operator
   runs: a TestRun here never starts.

What stays unreal: the pod's network. The API server's pod proxy does not
reach kwok's pod IPs (port-forward, through the kubelet port, is the path that
works), and the k6 process shares this host's network rather than the pod's.
"""

# ruff: noqa: E501  (embedded kwok stages and CRD schema keep their upstream lines)
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.rig.k6 import k6_binary
from tests.rig.procs import free_port

if TYPE_CHECKING:  # kube.py imports this module to write the kwokctl config
    from tests.rig.kube import KubeCluster

CONTAINER_ANNOTATION = "kwok.chaosray.test/container"
KWOK_GROUP, KWOK_VERSION = "kwok.x-k8s.io", "v1alpha1"
ENABLED_CRDS = ("Logs", "ClusterLogs", "PortForward", "ClusterPortForward", "Exec", "ClusterExec")

KWOKCTL_CONFIG = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  enableCRDs: [Logs, ClusterLogs, PortForward, ClusterPortForward, Exec, ClusterExec]
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type  | Quote}}
      {{ end }}

      {{ $hasInternalIP := false }}
      {{ $hasHostname := false }}
      {{ range .status.addresses }}
        {{ if eq .type "InternalIP" }}
          {{ $hasInternalIP = true }}
        {{ end }}
        {{ if eq .type "Hostname" }}
          {{ $hasHostname = true }}
        {{ end }}
      {{ end }}
      {{ if or (not $hasInternalIP) (not $hasHostname) }}
      addresses:
      {{ end }}
      {{ if not $hasInternalIP }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ end }}
      {{ if not $hasHostname }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}

      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}

      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}

      {{ $nodeInfo := .status.nodeInfo }}
      {{ $kwokVersion := printf "kwok-%s" Version }}
      nodeInfo:
        architecture: {{ or $nodeInfo.architecture "amd64" }}
        bootID: {{ or $nodeInfo.bootID `""` }}
        containerRuntimeVersion: {{ or $nodeInfo.containerRuntimeVersion $kwokVersion }}
        kernelVersion: {{ or $nodeInfo.kernelVersion $kwokVersion }}
        kubeProxyVersion: {{ or $nodeInfo.kubeProxyVersion $kwokVersion }}
        kubeletVersion: {{ or $nodeInfo.kubeletVersion $kwokVersion }}
        machineID: {{ or $nodeInfo.machineID `""` }}
        operatingSystem: {{ or $nodeInfo.operatingSystem "linux" }}
        osImage: {{ or $nodeInfo.osImage `""` }}
        systemUUID: {{ or $nodeInfo.systemUUID `""` }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat-with-lease
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values:
      - 'True'
  delay:
    durationMilliseconds: 600000
    jitterDurationMilliseconds: 610000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}

      addresses:
      {{ with .status.addresses }}
      {{ YAML . 1 }}
      {{ else }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}

      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
  next:
    statusTemplate: |
      {{ $now := Now }}

      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}

      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}

      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        {{ if eq .restartPolicy "Always" }}
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
        {{ else }}
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
        {{ end }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values:
      - 'Job'
    - key: '.metadata.annotations["kwok.chaosray.test/container"]'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $root := . }}
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      {{ $origin := index $root.status.containerStatuses $index }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: Succeeded
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    delete: true
"""

TESTRUN_CRD: dict[str, Any] = json.loads(
    """\
{
 "apiVersion": "apiextensions.k8s.io/v1",
 "kind": "CustomResourceDefinition",
 "metadata": {
  "name": "testruns.k6.io"
 },
 "spec": {
  "group": "k6.io",
  "names": {
   "kind": "TestRun",
   "listKind": "TestRunList",
   "plural": "testruns",
   "singular": "testrun"
  },
  "scope": "Namespaced",
  "versions": [
   {
    "additionalPrinterColumns": [
     {
      "description": "Stage",
      "jsonPath": ".status.stage",
      "name": "Stage",
      "type": "string"
     },
     {
      "jsonPath": ".metadata.creationTimestamp",
      "name": "Age",
      "type": "date"
     },
     {
      "jsonPath": ".status.testRunId",
      "name": "TestRunID",
      "type": "string"
     }
    ],
    "name": "v1alpha1",
    "schema": {
     "openAPIV3Schema": {
      "properties": {
       "apiVersion": {
        "type": "string"
       },
       "kind": {
        "type": "string"
       },
       "metadata": {
        "type": "object"
       },
       "spec": {
        "properties": {
         "args": {
          "items": {
           "type": "string"
          },
          "type": "array",
          "x-kubernetes-list-type": "atomic"
         },
         "arguments": {
          "type": "string"
         },
         "cleanup": {
          "enum": [
           "post"
          ],
          "type": "string"
         },
         "parallelism": {
          "format": "int32",
          "type": "integer"
         },
         "paused": {
          "default": "true",
          "type": "string"
         },
         "quiet": {
          "default": "true",
          "type": "string"
         },
         "runner": {
          "properties": {
           "env": {
            "items": {
             "properties": {
              "name": {
               "type": "string"
              },
              "value": {
               "type": "string"
              },
              "valueFrom": {
               "properties": {
                "configMapKeyRef": {
                 "properties": {
                  "key": {
                   "type": "string"
                  },
                  "name": {
                   "default": "",
                   "type": "string"
                  },
                  "optional": {
                   "type": "boolean"
                  }
                 },
                 "required": [
                  "key"
                 ],
                 "type": "object",
                 "x-kubernetes-map-type": "atomic"
                },
                "fieldRef": {
                 "properties": {
                  "apiVersion": {
                   "type": "string"
                  },
                  "fieldPath": {
                   "type": "string"
                  }
                 },
                 "required": [
                  "fieldPath"
                 ],
                 "type": "object",
                 "x-kubernetes-map-type": "atomic"
                },
                "fileKeyRef": {
                 "properties": {
                  "key": {
                   "type": "string"
                  },
                  "optional": {
                   "default": false,
                   "type": "boolean"
                  },
                  "path": {
                   "type": "string"
                  },
                  "volumeName": {
                   "type": "string"
                  }
                 },
                 "required": [
                  "key",
                  "path",
                  "volumeName"
                 ],
                 "type": "object",
                 "x-kubernetes-map-type": "atomic"
                },
                "resourceFieldRef": {
                 "properties": {
                  "containerName": {
                   "type": "string"
                  },
                  "divisor": {
                   "anyOf": [
                    {
                     "type": "integer"
                    },
                    {
                     "type": "string"
                    }
                   ],
                   "pattern": "^(\\\\+|-)?(([0-9]+(\\\\.[0-9]*)?)|(\\\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\\\+|-)?(([0-9]+(\\\\.[0-9]*)?)|(\\\\.[0-9]+))))?$",
                   "x-kubernetes-int-or-string": true
                  },
                  "resource": {
                   "type": "string"
                  }
                 },
                 "required": [
                  "resource"
                 ],
                 "type": "object",
                 "x-kubernetes-map-type": "atomic"
                },
                "secretKeyRef": {
                 "properties": {
                  "key": {
                   "type": "string"
                  },
                  "name": {
                   "default": "",
                   "type": "string"
                  },
                  "optional": {
                   "type": "boolean"
                  }
                 },
                 "required": [
                  "key"
                 ],
                 "type": "object",
                 "x-kubernetes-map-type": "atomic"
                }
               },
               "type": "object"
              }
             },
             "required": [
              "name"
             ],
             "type": "object"
            },
            "type": "array"
           },
           "image": {
            "type": "string"
           },
           "imagePullPolicy": {
            "type": "string"
           },
           "metadata": {
            "properties": {
             "annotations": {
              "additionalProperties": {
               "type": "string"
              },
              "type": "object"
             },
             "labels": {
              "additionalProperties": {
               "type": "string"
              },
              "type": "object"
             }
            },
            "type": "object"
           },
           "nodeSelector": {
            "additionalProperties": {
             "type": "string"
            },
            "type": "object"
           },
           "serviceAccountName": {
            "type": "string"
           }
          },
          "type": "object"
         },
         "script": {
          "properties": {
           "configMap": {
            "properties": {
             "file": {
              "type": "string"
             },
             "name": {
              "type": "string"
             }
            },
            "required": [
             "name"
            ],
            "type": "object"
           },
           "localFile": {
            "type": "string"
           },
           "volumeClaim": {
            "properties": {
             "file": {
              "type": "string"
             },
             "name": {
              "type": "string"
             },
             "readOnly": {
              "type": "boolean"
             }
            },
            "required": [
             "name"
            ],
            "type": "object"
           }
          },
          "type": "object"
         },
         "separate": {
          "type": "boolean"
         }
        },
        "required": [
         "parallelism",
         "script"
        ],
        "type": "object"
       },
       "status": {
        "properties": {
         "aggregationVars": {
          "type": "string"
         },
         "conditions": {
          "items": {
           "properties": {
            "lastTransitionTime": {
             "format": "date-time",
             "type": "string"
            },
            "message": {
             "maxLength": 32768,
             "type": "string"
            },
            "observedGeneration": {
             "format": "int64",
             "minimum": 0,
             "type": "integer"
            },
            "reason": {
             "maxLength": 1024,
             "minLength": 1,
             "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
             "type": "string"
            },
            "status": {
             "enum": [
              "True",
              "False",
              "Unknown"
             ],
             "type": "string"
            },
            "type": {
             "maxLength": 316,
             "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
             "type": "string"
            }
           },
           "required": [
            "lastTransitionTime",
            "message",
            "reason",
            "status",
            "type"
           ],
           "type": "object"
          },
          "type": "array",
          "x-kubernetes-list-map-keys": [
           "type"
          ],
          "x-kubernetes-list-type": "map"
         },
         "stage": {
          "enum": [
           "initialization",
           "initialized",
           "created",
           "started",
           "stopped",
           "finished",
           "error"
          ],
          "type": "string"
         },
         "testRunId": {
          "type": "string"
         }
        },
        "type": "object"
       }
      },
      "type": "object"
     }
    },
    "served": true,
    "storage": true,
    "subresources": {
     "status": {}
    }
   }
  ]
 }
}
"""
)


def write_kwokctl_config(kwok_workdir: Path) -> Path:
    """Write :data:`KWOKCTL_CONFIG` where kwokctl reads its default config
    (``$KWOK_WORKDIR/kwok.yaml``); call it before ``kwokctl create cluster``."""
    kwok_workdir.mkdir(parents=True, exist_ok=True)
    path = kwok_workdir / "kwok.yaml"
    path.write_text(KWOKCTL_CONFIG)
    return path


def has_container_emulation(cluster: KubeCluster) -> bool:
    """Whether the cluster's kwok serves Logs and PortForwards (see the module doc)."""
    crds = client.ApiextensionsV1Api(cluster.api())
    try:
        crds.read_custom_resource_definition("logs.kwok.x-k8s.io")
        crds.read_custom_resource_definition("portforwards.kwok.x-k8s.io")
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def install_testrun_crd(cluster: KubeCluster, timeout: float = 30) -> None:
    """Install :data:`TESTRUN_CRD` and wait until it is established."""
    crds = client.ApiextensionsV1Api(cluster.api())
    with contextlib.suppress(ApiException):
        crds.delete_custom_resource_definition(TESTRUN_CRD["metadata"]["name"])
        _wait(lambda: not _crd_exists(crds), timeout, "the old TestRun CRD to go")
    crds.create_custom_resource_definition(TESTRUN_CRD)

    def established() -> bool:
        crd = crds.read_custom_resource_definition(TESTRUN_CRD["metadata"]["name"])
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    _wait(established, timeout, "the TestRun CRD to be established")


def remove_testrun_crd(cluster: KubeCluster, timeout: float = 30) -> None:
    crds = client.ApiextensionsV1Api(cluster.api())
    with contextlib.suppress(ApiException):
        crds.delete_custom_resource_definition(TESTRUN_CRD["metadata"]["name"])
    _wait(lambda: not _crd_exists(crds), timeout, "the TestRun CRD to be gone")


def _crd_exists(crds: client.ApiextensionsV1Api) -> bool:
    try:
        crds.read_custom_resource_definition(TESTRUN_CRD["metadata"]["name"])
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def _cri_time() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 1000:09d}Z"


@dataclass
class Container:
    """One annotated pod's container, run here."""

    namespace: str
    pod: str
    name: str
    image: str
    argv: list[str]
    env: dict[str, str]
    files: dict[str, str]  # path in the pod -> content (from ConfigMap volumes)
    log_path: Path
    api_port: int | None
    process: subprocess.Popen[bytes]
    started_at: str
    threads: list[threading.Thread] = field(default_factory=list)
    exit_code: int | None = None
    reported: bool = False


class LocalContainers:
    """Runs the containers of annotated pods in ``namespace`` on this host
    (see the module doc). ``start()``, then ``stop()``: stops every process
    and deletes the Logs/PortForward objects it made."""

    def __init__(self, cluster: KubeCluster, namespace: str, work_dir: Path) -> None:
        self.api = cluster.api()
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.namespace = namespace
        self.work_dir = work_dir
        self.containers: dict[str, Container] = {}
        self.errors: list[str] = []
        self.skipped: set[str] = set()
        self._log_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kwok-containers", daemon=True)

    def start(self) -> LocalContainers:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for container in self.containers.values():
            self._terminate(container)
            for kind in ("logs", "portforwards"):
                with contextlib.suppress(ApiException):
                    self.custom.delete_namespaced_custom_object(
                        KWOK_GROUP, KWOK_VERSION, self.namespace, kind, container.pod
                    )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # keep playing the runtime; the test sees the errors
                if repr(exc) not in self.errors:
                    self.errors.append(repr(exc))
            self._stop.wait(0.2)

    def _step(self) -> None:
        pods = {p.metadata.name: p for p in self.core.list_namespaced_pod(self.namespace).items}
        for name, pod in pods.items():
            annotations = pod.metadata.annotations or {}
            if (
                CONTAINER_ANNOTATION in annotations
                and name not in self.containers
                and name not in self.skipped
                and pod.status.phase == "Running"
                and pod.metadata.deletion_timestamp is None
            ):
                if not pod.spec.containers[0].command:
                    # The image's entrypoint is not known here: nothing to run.
                    self.skipped.add(name)
                    self.errors.append(f"pod {name}: no command to run")
                    continue
                self.containers[name] = self._launch(pod)
        for name, container in self.containers.items():
            pod = pods.get(name)
            if container.process.poll() is None:
                if pod is None or pod.metadata.deletion_timestamp is not None:
                    self._terminate(container)  # the kubelet kills a deleted pod's containers
                continue
            container.exit_code = container.process.returncode
            if not container.reported and pod is not None:
                for thread in container.threads:
                    thread.join(5)
                self._report_exit(container)
            container.reported = True

    def _launch(self, pod: Any) -> Container:
        spec = pod.spec.containers[0]
        root = self.work_dir / pod.metadata.name
        root.mkdir(parents=True, exist_ok=True)
        volumes = {v.name: v for v in pod.spec.volumes or []}
        mounts: dict[str, Path] = {}
        files: dict[str, str] = {}
        for mount in spec.volume_mounts or []:
            volume = volumes.get(mount.name)
            if volume is None or volume.config_map is None:
                continue
            data = (
                self.core.read_namespaced_config_map(volume.config_map.name, self.namespace).data
                or {}
            )
            local = root / "volumes" / mount.name
            local.mkdir(parents=True, exist_ok=True)
            for key, content in data.items():
                (local / key).write_text(content)
                files[f"{mount.mount_path.rstrip('/')}/{key}"] = content
            mounts[mount.mount_path.rstrip("/")] = local
        argv = [*(spec.command or []), *(spec.args or [])]
        if argv and argv[0] == "k6":
            argv[0] = k6_binary()
        api_port: int | None = None
        rewritten: list[str] = []
        expect_address = False
        for arg in argv:
            if expect_address or arg.startswith("--address="):
                api_port = free_port()
                value = f"127.0.0.1:{api_port}"
                rewritten.append(value if expect_address else f"--address={value}")
                expect_address = False
                continue
            expect_address = arg == "--address"
            for mount_path, local in mounts.items():
                if arg.startswith(mount_path + "/"):
                    arg = str(local) + arg[len(mount_path) :]
            rewritten.append(arg)
        env = {e.name: e.value or "" for e in spec.env or []}
        process_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(root), **env}
        log_path = root / "container.log"
        log_path.touch()
        process = subprocess.Popen(
            rewritten,
            cwd=root,
            env=process_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        container = Container(
            self.namespace, pod.metadata.name, spec.name, spec.image, rewritten, env, files,
            log_path, api_port, process, _cri_time(),
        )  # fmt: skip
        for stream, pipe in (("stdout", process.stdout), ("stderr", process.stderr)):
            assert pipe is not None
            thread = threading.Thread(
                target=self._copy_log, args=(pipe, stream, log_path), daemon=True
            )
            thread.start()
            container.threads.append(thread)
        self._create_kwok_object("logs", pod.metadata.name, {"logs": [{"logsFile": str(log_path)}]})
        if api_port is not None:
            forward = {"ports": [6565], "target": {"address": "127.0.0.1", "port": api_port}}
            self._create_kwok_object("portforwards", pod.metadata.name, {"forwards": [forward]})
        return container

    def _create_kwok_object(self, plural: str, name: str, spec: dict[str, Any]) -> None:
        kind = {"logs": "Logs", "portforwards": "PortForward"}[plural]
        body = {
            "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
            "kind": kind,
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(
            KWOK_GROUP, KWOK_VERSION, self.namespace, plural, body
        )

    def _copy_log(self, pipe: IO[bytes], stream: str, path: Path) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._log_lock, path.open("a", encoding="utf-8") as log:
                log.write(f"{_cri_time()} {stream} F {line}\n")
        pipe.close()

    def _report_exit(self, container: Container) -> None:
        code = int(container.exit_code or 0)
        now = _cri_time()
        body = {
            "status": {
                "phase": "Succeeded" if code == 0 else "Failed",
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "PodCompleted"},
                    {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"},
                ],
                "containerStatuses": [
                    {
                        "name": container.name,
                        "image": container.image,
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {
                            "running": None,
                            "terminated": {
                                "exitCode": code,
                                "reason": "Completed" if code == 0 else "Error",
                                "startedAt": container.started_at,
                                "finishedAt": now,
                            },
                        },
                    }
                ],
            }
        }
        with contextlib.suppress(ApiException):
            self.core.patch_namespaced_pod_status(container.pod, self.namespace, body)

    def _terminate(self, container: Container) -> None:
        process = container.process
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
