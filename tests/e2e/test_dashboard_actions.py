"""The dashboard's actions and RBAC, in Chromium against the control plane and the operator (kwok):

- as an admin: pause/resume a queue, cancel a waiting execution, rerun it, each through the
  page's confirm dialog; the objects change as `kubectl` sees them; the queue panel shows its
  TestEnvironment with its holder (a running execution) and the executions finished in the last hour;
- as a read-only ServiceAccount (a Role with get/list/watch, token kubeconfig) with `-A`: the page
  says it shows only the kubeconfig's namespace, offers no button, a forged POST is refused, and
  another namespace's executions never appear; a request naming a foreign Host (DNS rebinding) is refused.
"""
from __future__ import annotations

import http.client
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from tests.cluster.test_cli_day2 import _reader_kubeconfig
from tests.e2e.test_dashboard import SHOTS, Dashboard, _until, chromium  # noqa: F401 - the fixture
from tests.harness.sluice_api import GROUP, VERSION, kwok_runner




def _confirm(page, button) -> None:
    button.click()
    dialog = page.locator("[data-testid=confirm]")
    dialog.wait_for(state="visible", timeout=5000)
    page.locator("[data-testid=confirm-yes]").click()


@pytest.mark.cluster
def test_actions_behind_a_confirm_and_only_where_rbac_allows(cluster, namespace, sluice, start_operator, chromium,
                                                             tmp_path):
    start_operator(running_capacity=5)
    env_name = f"dash-env-{uuid.uuid4().hex[:6]}"
    other_ns = f"dash-other-{uuid.uuid4().hex[:6]}"
    with cluster.api_client() as api:
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        custom.create_cluster_custom_object(GROUP, VERSION, "testenvironments", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "TestEnvironment", "metadata": {"name": env_name},
            "spec": {"concurrency": 2}})
        core.create_namespace({"metadata": {"name": other_ns, "labels": {"test.sluice.dev/namespace": "true"}}})
        custom.create_namespaced_custom_object(GROUP, VERSION, other_ns, "testqueues", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "TestQueue", "metadata": {"name": "secret-queue"},
            "spec": {"runningCapacity": 1}})
    try:
        sluice.create_queue("q", {"runningCapacity": 1, "queuedCapacity": 20, "paused": True})
        sluice.create("done-1", {"runner": kwok_runner("1s")})
        sluice.create("tx-a", {"queue": "q", "runner": kwok_runner("1s"), "environments": [env_name]})
        sluice.wait_phase("tx-a", "Queued")
        sluice.wait_phase("done-1", "Succeeded")
        sluice.create("holder", {"runner": kwok_runner("90s"), "environments": [env_name]})
        sluice.wait_phase("holder", "Running")

        dash = Dashboard(cluster.kubeconfig, namespace).start()
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 800})
            page.goto(dash.url + "/")
            card = page.locator('[data-testid=queue][data-queue="q"]')
            env = card.locator(f'[data-env="{env_name}"]')
            _until(lambda: env.count() == 1 and f"{namespace}/holder" in env.inner_text(), 15, "environment's holder")
            assert "1/2 in use" in env.inner_text(), env.inner_text()
            done_card = page.locator('[data-testid=queue][data-queue="default"]')
            _until(lambda: "1 finished in the last hour" in done_card.inner_text(), 10, "throughput shown")

            # pause/resume: the dialog's "Keep as is" changes nothing, "Yes" resumes
            resume = card.locator('button[data-action="pause"]')
            _until(lambda: resume.count() == 1, 10, "resume button")
            assert resume.inner_text() == "Resume"
            resume.click()
            page.locator("[data-testid=confirm-no]").click()
            assert sluice.get_queue("q")["spec"]["paused"] is True
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "overview-actions.png"), full_page=True)

            # cancel a waiting one (the queue stays paused so it waits)
            row = page.locator('[data-testid=waiting] tr[data-name="tx-a"]')
            _confirm(page, row.locator('button[data-action="cancel"]'))
            _until(lambda: "cancel requested" in page.locator("[data-testid=toast]").inner_text(), 10, "told")
            assert sluice.get("tx-a")["spec"].get("cancel") is True
            sluice.wait_phase("tx-a", "Cancelled", timeout=30)

            # rerun it from the finished list: same spec, not cancelled
            fin = page.locator('[data-testid=finished] tr[data-name="tx-a"]')
            fin.wait_for(timeout=10_000)
            _confirm(page, fin.locator('button[data-action="rerun"]'))
            _until(lambda: "tx-a-r1 created" in page.locator("[data-testid=toast]").inner_text(), 10, "rerun told")
            rerun = sluice.get("tx-a-r1")
            assert not rerun["spec"].get("cancel") and rerun["spec"]["queue"] == "q"

            _confirm(page, card.locator('button[data-action="pause"]'))
            _until(lambda: sluice.get_queue("q")["spec"].get("paused") is False, 10, "queue resumed")
            _until(lambda: card.locator('button[data-action="pause"]').inner_text() == "Pause", 10, "button flips")
            sluice.wait_phase("tx-a-r1", "Succeeded", timeout=60)
        finally:
            dash.stop()

        # the read-only ServiceAccount, asking for every namespace
        reader = _reader_kubeconfig(cluster, namespace, tmp_path / "reader.kubeconfig")
        ro = Dashboard(reader, None).start()
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 800})
            page.goto(ro.url + "/")
            _until(lambda: page.locator('[data-testid=finished] tr[data-name="tx-a-r1"]').count() == 1, 15, "own rows")
            assert f"showing namespace {namespace}" in page.locator("[data-testid=notes]").inner_text()
            page.wait_for_timeout(2500)  # the permission reviews have answered (1 s poll) and been pushed
            assert page.locator("button[data-action]").count() == 0
            assert page.locator('[data-testid=queue][data-queue="secret-queue"]').count() == 0
            assert other_ns not in page.inner_text("body")
            # the environment's status is not the reader's to see: its name only
            env_text = page.locator(f'[data-env="{env_name}"]').first.inner_text()
            assert "status not visible" in env_text, env_text
            forged = page.request.post(f"{ro.url}/api/x/{namespace}/tx-a-r1/rerun",
                                       headers={"X-Sluice-Action": "1"}, data="{}")
            assert forged.status == 403 and "may not rerun" in forged.json()["error"], forged.text()
            no_header = page.request.post(f"{ro.url}/api/x/{namespace}/tx-a-r1/cancel", data="{}")
            assert no_header.status == 403
            rebound = http.client.HTTPConnection("127.0.0.1", ro.port, timeout=10)  # DNS rebinding: a foreign Host
            rebound.request("GET", "/", headers={"Host": f"evil.example:{ro.port}"})
            assert rebound.getresponse().status == 421
            rebound.close()
        finally:
            ro.stop()
    finally:
        with cluster.api_client() as api:
            for fn, args in ((client.CustomObjectsApi(api).delete_cluster_custom_object,
                              (GROUP, VERSION, "testenvironments", env_name)),
                             (client.CoreV1Api(api).delete_namespace, (other_ns,))):
                try:
                    fn(*args)
                except client.ApiException:
                    pass
