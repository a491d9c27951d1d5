"""`kubectl explain` explains every field: each schema node of both CRDs has a description, and
docs/API.md's generated field reference lists every field with that very description.

The walk here is written independently of hack/gen-crds, so a generator that skipped a node (an
array's items, a map's values) or a CRD edited without re-running it both fail.

The one exception is `metadata`: the API server refuses a CRD whose metadata schema says anything
but `type: object` ("must not specify anything other than name and generateName"), so there it
must have no description, and kubectl explain shows the standard ObjectMeta text instead."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = {"TestExecution": ROOT / "crds" / "testexecution.yaml", "TestQueue": ROOT / "crds" / "testqueue.yaml",
        "TestEnvironment": ROOT / "crds" / "testenvironment.yaml", "TestSchedule": ROOT / "crds" / "testschedule.yaml"}
BEGIN, END = "<!-- BEGIN GENERATED FIELDS", "<!-- END GENERATED FIELDS -->"


def schema_of(kind: str) -> dict:
    crd = yaml.safe_load(CRDS[kind].read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def nodes(schema: dict, path: str = ""):
    """(path, node) for the root and every property, array item and map value, at every depth
    (but `metadata`, the standard ObjectMeta)."""
    if path == "metadata":
        return
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from nodes(sub, f"{path}.{name}" if path else name)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from nodes(items, f"{path}[]")
    values = schema.get("additionalProperties")
    if isinstance(values, dict):
        yield from nodes(values, f"{path}.*")


def generated_section() -> str:
    text = (ROOT / "docs" / "API.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "docs/API.md lost its GENERATED FIELDS markers"
    return text.split(BEGIN, 1)[1].split(END, 1)[0]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_node_has_a_one_sentence_description(kind):
    missing, bad = [], []
    for path, node in nodes(schema_of(kind)):
        doc = node.get("description")
        if not isinstance(doc, str) or not doc.strip():
            missing.append(path or "(the kind)")
        elif "\n" in doc.strip() or not doc.strip().endswith("."):
            bad.append(path or "(the kind)")
    assert not missing, f"{kind}: no description for {missing}"
    assert not bad, f"{kind}: descriptions should be one line ending with '.': {bad}"


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_the_kind_spec_and_status_are_described(kind):
    root = schema_of(kind)
    assert root["description"].startswith(kind)
    for part in ("spec", "status"):
        assert len(root["properties"][part]["description"]) > 20


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_metadata_says_nothing_but_its_type(kind):
    """Anything more is refused by the API server when the CRD is applied."""
    assert schema_of(kind)["properties"]["metadata"] == {"type": "object"}


def test_every_kind_of_node_is_walked():
    """The walk reaches items and map values too, not only named properties."""
    paths = {p for p, _ in nodes(schema_of("TestExecution"))}
    assert {"spec.args[]", "spec.runner.env[].valueFrom.secretKeyRef.key", "spec.runner.nodeSelector.*",
            "spec.runner.resources.limits.*", "status.conditions[].observedGeneration"} <= paths
    queue = {p for p, _ in nodes(schema_of("TestQueue"))}
    assert {"spec.defaults.runner.tolerations[].effect", "status.head[]", "status.waitSeconds.p95"} <= queue


def test_queue_defaults_are_not_called_immutable():
    """A queue's defaults may change; only the execution's own fields are immutable."""
    defaults = schema_of("TestQueue")["properties"]["spec"]["properties"]["defaults"]
    for name, node in defaults["properties"].items():
        assert "immutable" not in node["description"], name
        assert node["description"].startswith(f"Default spec.{name}"), name


def test_the_queue_conditions_describe_the_queue_types():
    conditions = schema_of("TestQueue")["properties"]["status"]["properties"]["conditions"]
    assert "Paused" in conditions["items"]["properties"]["type"]["description"]
    assert "Reconciling" not in conditions["description"]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_docs_field_reference_lists_every_field_with_its_description(kind):
    section = generated_section()
    table = section.split(f"### {kind} ", 1)[1].split("### ", 1)[0]
    rows = {}
    for line in table.splitlines():
        m = re.match(r"^\| `([^`]+)` \| [^|]* \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    fields = [(p, n) for p, n in nodes(schema_of(kind)) if p]
    assert [p for p, _ in fields] == list(rows), f"{kind}: docs/API.md lists other fields than the CRD"
    for path, node in fields:
        shown = rows[path].replace("&lt;", "<")
        shown = re.sub(r"\\(.)", r"\1", shown)
        assert shown == " ".join(node["description"].split()), f"{kind} {path}: docs/API.md is stale"


def test_gen_crds_check_passes_on_the_committed_files():
    proc = subprocess.run([sys.executable, str(ROOT / "hack" / "gen-crds"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
