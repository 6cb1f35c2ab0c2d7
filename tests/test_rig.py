"""Each rig component is the real thing, and stopping it leaves nothing behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.rig.http_server import ScheduledServer, start_scheduled_server
from tests.rig.k6 import run_k6
from tests.rig.moto import MotoServer, start_moto_server
from tests.rig.procs import ComponentFailed, ManagedProcess, port_open
from tests.rig.redis import RedisSentinelSet, RedisServer, start_redis

K6_SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: { load: { executor: 'constant-arrival-rate', rate: 20, timeUnit: '1s',
                       duration: __ENV.DURATION || '2s', preAllocatedVUs: 5 } },
  thresholds: { http_req_failed: ['rate<0.01'] },
};
export default function () { http.get(__ENV.TARGET + '/infer'); }
"""


def _gone(proc: ManagedProcess, port: int) -> bool:
    return not proc.leftovers() and not port_open("127.0.0.1", port)


# --- the scheduled-failure server -------------------------------------------------------------


def test_scheduled_server_follows_its_schedule(scheduled_server: ScheduledServer) -> None:
    windows = scheduled_server.arm(
        [
            {"start": 0.5, "end": 1.0, "mode": "down"},
            {"start": 1.2, "end": 1.6, "mode": "error", "status": 502},
            {"start": 1.8, "end": 2.3, "mode": "slow", "delay": 0.3},
        ]
    )
    assert [round(w.duration, 3) for w in windows] == [0.5, 0.4, 0.5]
    seen: list[tuple[float, int, float]] = []
    deadline = windows[-1].end + 0.3
    while time.time() < deadline:
        sent = time.time()
        answer = requests.get(f"{scheduled_server.url}/infer", timeout=2)
        seen.append((sent, answer.status_code, time.time() - sent))
        time.sleep(0.02)
    down, error, slow = windows
    # Requests sent well inside a window get that window's behaviour; well outside, 200.
    for sent, status, latency in seen:
        if down.start + 0.05 < sent < down.end - 0.05:
            assert status == 503
        elif error.start + 0.05 < sent < error.end - 0.05:
            assert status == 502
        elif slow.start + 0.05 < sent < slow.end - 0.05:
            assert status == 200 and latency >= 0.3
        elif all(not (w.start - 0.05 < sent < w.end + 0.35) for w in windows):
            assert status == 200 and latency < 0.3
    assert {s for _, s, _ in seen} == {200, 502, 503}
    # The server's own log agrees with what it answered.
    logged = scheduled_server.served()
    assert len(logged) == len(seen)
    assert {r["status"] for r in logged if r["mode"] == "down"} == {503}


def test_scheduled_server_reset_mode_drops_connections(scheduled_server: ScheduledServer) -> None:
    scheduled_server.arm([{"start": 0, "end": 5, "mode": "reset"}])
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{scheduled_server.url}/infer", timeout=2)
    assert scheduled_server.served()[0]["status"] == "reset"


def test_scheduled_server_leaves_nothing_behind(tmp_path: Path) -> None:
    server = start_scheduled_server(tmp_path)
    assert requests.get(f"{server.url}/infer", timeout=2).json()["result"] == "ok"
    server.stop()
    assert _gone(server.process, server.port)


# --- k6 ----------------------------------------------------------------------------------------


def test_k6_passes_against_a_healthy_server(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    script = tmp_path / "rig.js"
    script.write_text(K6_SCRIPT)
    run = run_k6(script, tmp_path, env={"TARGET": scheduled_server.url})
    assert run.exit_code == 0, run.output
    requests_made = run.summary["metrics"]["http_reqs"]["count"]
    # 20/s for 2 s; k6 really sent them, and the server really served them.
    assert 35 <= requests_made <= 45
    assert len(scheduled_server.served()) == requests_made


def test_k6_exits_99_when_a_threshold_fails(
    scheduled_server: ScheduledServer, tmp_path: Path
) -> None:
    script = tmp_path / "rig.js"
    script.write_text(K6_SCRIPT)
    scheduled_server.arm([{"start": 0, "end": 60, "mode": "down"}])
    run = run_k6(script, tmp_path, env={"TARGET": scheduled_server.url})
    assert run.exit_code == 99, run.output
    assert run.summary["metrics"]["http_req_failed"]["value"] == 1.0


# --- redis -------------------------------------------------------------------------------------


def test_redis_server_is_real(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("rig", "ok")
    assert client.get("rig") == b"ok"
    assert client.info("server")["redis_version"].count(".") == 2


def test_redis_server_leaves_nothing_behind(tmp_path: Path) -> None:
    server = start_redis(tmp_path)
    server.stop()
    assert _gone(server.process, server.port)


def test_redis_start_failure_shows_redis_own_error(tmp_path: Path) -> None:
    first = start_redis(tmp_path, "first")
    try:
        # A second server on a bad option fails with redis-server's own words.
        with pytest.raises(ComponentFailed, match=r"(?i)bad directive|wrong number|FATAL"):
            proc = ManagedProcess("bad-redis", ["redis-server", "--port", "not-a-port"], tmp_path)
            proc.wait_ready(lambda: False, 10, "bad redis to answer")
    finally:
        first.stop()


def test_sentinel_set_replicates_and_fails_over(redis_sentinel_set: RedisSentinelSet) -> None:
    ha = redis_sentinel_set
    ha.primary.client().set("k", "v")
    for replica in ha.replicas:
        info = replica.client().info("replication")
        assert info["role"] == "slave" and info["master_port"] == ha.primary.port
    for sentinel in ha.sentinels:
        assert ha.sentinel_primary(sentinel) == ("127.0.0.1", ha.primary.port)
    old_port = ha.primary.port
    ha.primary.stop()
    deadline = time.time() + 30
    while time.time() < deadline and ha.sentinel_primary(ha.sentinels[0])[1] == old_port:
        time.sleep(0.2)
    new_port = ha.sentinel_primary(ha.sentinels[0])[1]
    assert new_port in {r.port for r in ha.replicas}
    promoted = next(r for r in ha.replicas if r.port == new_port)
    assert promoted.client().info("replication")["role"] == "master"
    assert promoted.client().get("k") == b"v"
    assert not ha.primary.process.leftovers()


# --- moto --------------------------------------------------------------------------------------


def test_moto_serves_elbv2_target_health(moto_server: MotoServer) -> None:
    ec2 = moto_server.client("ec2")
    elbv2 = moto_server.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")
    lb = elbv2.create_load_balancer(
        Name="rig-nlb", Type="network", Subnets=[subnet["Subnet"]["SubnetId"]]
    )["LoadBalancers"][0]
    assert lb["Type"] == "network"
    tg = elbv2.create_target_group(
        Name="rig-tg", Protocol="TCP", Port=8000, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]
    elbv2.register_targets(
        TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "10.0.1.10"}, {"Id": "10.0.1.11"}]
    )
    health = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
    assert sorted(t["Target"]["Id"] for t in health["TargetHealthDescriptions"]) == [
        "10.0.1.10",
        "10.0.1.11",
    ]


def test_moto_leaves_nothing_behind(tmp_path: Path) -> None:
    server = start_moto_server(tmp_path)
    assert (
        json.loads(requests.get(f"{server.endpoint_url}/moto-api/data.json", timeout=5).text)
        is not None
    )
    server.stop()
    assert _gone(server.process, server.port)
