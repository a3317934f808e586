"""The container lab (testcontainers on Docker or Podman): the container faults with their heals
(every row's drill on containers is in provider_contract.py). Skipped, with the reason
printed, where no container engine answers."""

from __future__ import annotations

import pytest
import requests

from harness.faults import FaultContext, build, injected
from harness.lab.containers import ContainerLab, ContainerLauncher
from harness.lab.engine import ContainerEngineUnavailable, find_engine
from harness.model import FaultSpec
from tests.support import wait_for


def engine_or_skip() -> None:
    try:
        find_engine().stop()
    except ContainerEngineUnavailable as why:
        pytest.skip(f"no container engine: {why}")


@pytest.fixture(scope="module")
def container_lab():
    engine_or_skip()
    with ContainerLab() as lab:
        yield lab


def live(url: str) -> bool:
    try:
        return requests.get(url + "/health/live", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("fault_type", ["container_pause", "container_kill", "container_stop", "network_disconnect"])
def test_each_container_fault_takes_an_instance_away_and_its_heal_brings_it_back(container_lab, fault_type):
    url = container_lab.endpoints()["instances"]["az1"]
    wait_for(lambda: live(url), timeout=30)
    fault = build(FaultSpec(fault_type, "az1"))
    with injected(fault, FaultContext(toxiproxy=container_lab.toxiproxy, lab=container_lab)):
        assert not live(url)
        # within a few probe intervals the load balancer routes around the lost instance
        wait_for(lambda: container_lab.lb.server_states().get("az1") == "DOWN", timeout=30)
        assert all(live(container_lab.api_url) for _ in range(6))
    wait_for(lambda: live(url), timeout=60)
    if fault_type == "container_kill":  # healed by a new container: the killed one's log is kept
        replaced = container_lab.replaced_logs.get("az1", [])
        assert replaced and replaced[-1].strip(), "the killed container's log was not kept"
        tail = ContainerLauncher(container_lab, {}).tail("az1", 5)
        assert tail.index("(replaced container") < tail.index("(current container)")


def test_a_container_fault_on_an_unknown_part_names_the_known_ones(container_lab):
    fault = build(FaultSpec("container_pause", "az9"))
    with pytest.raises(KeyError, match="known: .*az1"):
        fault.inject(FaultContext(lab=container_lab))


def test_a_killed_runs_containers_and_network_are_reaped(tmp_path):
    import shutil
    import subprocess

    from harness.lab.containers import BASE_IMAGE, remove_lab_containers

    engine_or_skip()
    cli = shutil.which("podman") or shutil.which("docker")
    if cli is None:
        pytest.skip("no podman or docker command line to create a leftover with")
    lab_id = "drillctr-leftover-test"
    subprocess.run(
        [cli, "network", "create", "--label", f"drill-lab={lab_id}", lab_id], check=True, capture_output=True
    )
    subprocess.run(
        [
            cli,
            "create",
            "--label",
            f"drill-lab={lab_id}",
            "--network",
            lab_id,
            "--name",
            f"{lab_id}-x",
            BASE_IMAGE,
            "/bin/true",
        ],
        check=True,
        capture_output=True,
    )
    remove_lab_containers({"lab_id": lab_id})
    left = subprocess.run(
        [cli, "ps", "-aq", "--filter", f"label=drill-lab={lab_id}"], capture_output=True, text=True
    ).stdout.split()
    networks = subprocess.run(
        [cli, "network", "ls", "-q", "--filter", f"label=drill-lab={lab_id}"], capture_output=True, text=True
    ).stdout.split()
    assert left == [] and networks == []


def test_the_labs_reaper_tag_matches_only_what_it_started_itself_not_the_engines_processes(container_lab):
    from harness.lab import proc

    matched = proc.pids_matching(container_lab.registration.record.tag)
    assert container_lab.lb.process.pid in matched
    assert not [p for p in matched if "conmon" in proc.comm(p) or "podman" in proc.comm(p)]
