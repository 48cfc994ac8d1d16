"""manifests/k8s: valid against Kubernetes' own schemas (kubernetes-validate, offline) and consistent.

Schema validation catches misspelt or misplaced fields; the other tests catch what a schema
cannot: selectors that match nothing, settings the app would reject, probes on the wrong port.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from core.settings import PROJECT_ROOT, Settings, load_settings

K8S = PROJECT_ROOT / "manifests" / "k8s"
# The oldest release still commonly run and a recent one; both are bundled with kubernetes-validate.
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")
EXAMPLE_FILES = {"secret.example.yaml"}
EXPECTED_WORKLOADS = {
    "agent-ticket-bot": ["bot"],
    "agent-ticket-worker": ["worker", "--queue", "workflows"],
    "agent-ticket-llm-worker": ["worker", "--queue", "llm"],
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _resource_files() -> list[Path]:
    return sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
APPLIED = [doc for name in KUSTOMIZATION["resources"] for doc in _documents(K8S / name)]
SECRET_EXAMPLE = _documents(K8S / "secret.example.yaml")[0]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in APPLIED if doc["kind"] == kind]


def _named(kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in _of_kind(kind) if doc["metadata"]["name"] == name]
    return found


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (doc["metadata"]["name"], doc["spec"]["template"]["spec"]) for doc in _of_kind("Deployment") + _of_kind("Job")
    ]


def _variable(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else field.upper()


VARIABLES = {_variable(field): field for field in Settings.model_fields}


def _is_secret(field: str) -> bool:
    annotation = Settings.model_fields[field].annotation
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", _resource_files(), ids=lambda path: path.name)
def test_valid_against_the_kubernetes_schema(path: Path, version: str) -> None:
    documents = _documents(path)
    assert documents
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field() -> None:
    """The check above can fail: an unknown field under the pod spec is an error."""
    bot = yaml.safe_load(yaml.safe_dump(_named("Deployment", "agent-ticket-bot")))
    bot["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = bot["spec"]["template"]["spec"]["containers"][
        0
    ].pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bot, KUBERNETES_VERSIONS[0], strict=True)


def test_kustomization_applies_every_manifest_but_the_example_secret() -> None:
    assert KUSTOMIZATION["kind"] == "Kustomization"
    listed = set(KUSTOMIZATION["resources"])
    assert listed == {path.name for path in _resource_files()} - EXAMPLE_FILES
    assert not any(doc["kind"] == "Secret" for doc in APPLIED), "real secrets never come from git"
    assert {image["name"] for image in KUSTOMIZATION["images"]} == {
        container["image"] for _, spec in _pod_specs() for container in spec["containers"]
    }


def test_deployments_for_bot_and_both_worker_pools() -> None:
    deployments = {doc["metadata"]["name"]: doc for doc in _of_kind("Deployment")}
    assert set(deployments) == set(EXPECTED_WORKLOADS)
    for name, args in EXPECTED_WORKLOADS.items():
        spec = deployments[name]["spec"]
        (container,) = spec["template"]["spec"]["containers"]
        assert container["args"] == args
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_every_service_selects_exactly_one_deployment() -> None:
    services = _of_kind("Service")
    assert {service["metadata"]["name"] for service in services} == set(EXPECTED_WORKLOADS)
    for service in services:
        selector = service["spec"]["selector"].items()
        matching = [
            doc["metadata"]["name"]
            for doc in _of_kind("Deployment")
            if selector <= doc["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matching == [service["metadata"]["name"]]


def test_bot_probes_healthz_on_the_port_its_service_targets() -> None:
    (container,) = _named("Deployment", "agent-ticket-bot")["spec"]["template"]["spec"]["containers"]
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    config = _named("ConfigMap", "agent-ticket-config")["data"]
    assert port_names == {"http": 3000, "metrics": int(config["BOT_METRICS_PORT"])}
    annotations = _named("Deployment", "agent-ticket-bot")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port_names["metrics"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    (service_port,) = _named("Service", "agent-ticket-bot")["spec"]["ports"]
    assert service_port["targetPort"] == "http"  # the Service never exposes /metrics
    assert int(config["BOT_PORT"]) == port_names["http"]
    assert config["BOT_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("name", ["agent-ticket-worker", "agent-ticket-llm-worker"])
def test_workers_have_no_port_and_time_to_drain(name: str) -> None:
    spec = _named("Deployment", name)["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    # Only the metrics port, which the pod's scrape annotation names (the ConfigMap's METRICS_PORT).
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"metrics": int(_named("ConfigMap", "agent-ticket-config")["data"]["METRICS_PORT"])}
    annotations = _named("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])
    assert "livenessProbe" not in container
    assert spec["terminationGracePeriodSeconds"] >= 60


def test_every_pod_has_resources_settings_and_runs_unprivileged() -> None:
    dockerfile_user = re.search(r"^USER (\d+):(\d+)$", (PROJECT_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert dockerfile_user is not None
    for name, spec in _pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert str(spec["securityContext"]["runAsUser"]) == dockerfile_user[1], name
        mounted = {mount["mountPath"] for container in spec["containers"] for mount in container["volumeMounts"]}
        assert "/run/secrets/temporal" in mounted, f"{name}: TEMPORAL_TLS_* paths must exist in every pod"
        for container in spec["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            sources = {
                (kind, ref["name"])
                for source in container["envFrom"]
                for kind, ref in source.items()
                if kind != "prefix"
            }
            assert sources == {("configMapRef", "agent-ticket-config"), ("secretRef", "agent-ticket-secrets")}


def test_configmap_and_secret_use_real_setting_names_and_keep_secrets_apart() -> None:
    config = _named("ConfigMap", "agent-ticket-config")["data"]
    secret = SECRET_EXAMPLE["stringData"]
    assert SECRET_EXAMPLE["metadata"]["name"] == "agent-ticket-secrets"
    assert sorted(set(config) - set(VARIABLES)) == []
    assert sorted(set(secret) - set(VARIABLES)) == []
    secret_settings = {name for name, field in VARIABLES.items() if _is_secret(field)}
    assert secret_settings
    assert sorted(set(config) & (secret_settings | {"APP_DATABASE_URL", "TARGET_DATABASE_URL"})) == []


def test_configmap_and_secret_load_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a pod's environment becomes must pass the app's own validation."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    environment = {**_named("ConfigMap", "agent-ticket-config")["data"], **SECRET_EXAMPLE["stringData"]}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(_env_file=None)
    assert settings.app_db_url.startswith("postgresql+asyncpg://")
    assert settings.target_db_url.startswith("postgresql+asyncpg://")
    assert settings.slack_enabled and settings.llm_enabled
    assert settings.seed_demo_data is False


def test_network_policies_admit_only_the_ingress_and_prometheus() -> None:
    """Issue 14: nothing but the ingress reaches the bot's port, nothing but monitoring the metrics ports."""
    bot = _named("NetworkPolicy", "agent-ticket-bot")["spec"]
    assert bot["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "bot"
    assert bot["policyTypes"] == ["Ingress"]
    allowed = {
        tuple(port["port"] for port in rule["ports"]): rule["from"][0]["namespaceSelector"]["matchLabels"]
        for rule in bot["ingress"]
    }
    assert allowed == {
        ("http",): {"kubernetes.io/metadata.name": "ingress-nginx"},
        ("metrics",): {"kubernetes.io/metadata.name": "monitoring"},
    }
    workers = _named("NetworkPolicy", "agent-ticket-workers")["spec"]
    (rule,) = workers["ingress"]
    assert [port["port"] for port in rule["ports"]] == ["metrics"]
    selected = {expr["key"]: set(expr["values"]) for expr in workers["podSelector"]["matchExpressions"]}
    assert selected["app.kubernetes.io/component"] >= {"worker", "llm-worker"}
