"""The Helm chart in helm/crowdguard: lint, render and check the manifests.

Needs the helm CLI, built from source once by scripts/ensure_helm.sh (a few
minutes the first time, cached under ~/.cache/crowdguard afterwards). No cluster:
everything here is `helm lint` / `helm template` plus assertions on the parsed
YAML.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "crowdguard"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
FILES = CHART / "files"

# The first helm build may take several minutes on two cores.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]


# -- helpers ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def helm() -> str:
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "ensure_helm.sh")],
                          capture_output=True, text=True, timeout=1400, check=False)
    assert proc.returncode == 0, f"scripts/ensure_helm.sh failed:\n{proc.stderr[-4000:]}"
    path = proc.stdout.strip().splitlines()[-1]
    assert Path(path).is_file(), path
    return path


class Rendered(list):
    """The documents of one `helm template`, with lookups by kind."""

    def kinds(self) -> list[str]:
        return sorted(d["kind"] for d in self)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self if d["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        found = [d for d in self.all(kind) if d["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"expected one {kind}*{name_suffix}, got {[d['metadata']['name'] for d in found]}"
        return found[0]

    def container(self) -> dict[str, Any]:
        return self.one("Deployment")["spec"]["template"]["spec"]["containers"][0]

    def config(self) -> dict[str, str]:
        return self.one("ConfigMap", "crowdguard")["data"]


def _helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)


def _values_args(tmp_path: Path, values: dict[str, Any] | None, files: list[Path]) -> list[str]:
    args: list[str] = []
    for f in files:
        args += ["-f", str(f)]
    if values is not None:
        extra = tmp_path / f"values-{len(list(tmp_path.glob('values-*')))}.yaml"
        extra.write_text(yaml.safe_dump(values))
        args += ["-f", str(extra)]
    return args


def template(helm: str, tmp_path: Path, values: dict[str, Any] | None = None,
             files: tuple[Path, ...] = ()) -> Rendered:
    proc = _helm(helm, "template", "cg", str(CHART), "--namespace", "crowd",
                 *_values_args(tmp_path, values, list(files)))
    assert proc.returncode == 0, f"helm template failed:\n{proc.stderr}"
    return Rendered(d for d in yaml.safe_load_all(proc.stdout) if d)


def template_fails(helm: str, tmp_path: Path, values: dict[str, Any],
                   files: tuple[Path, ...] = ()) -> str:
    proc = _helm(helm, "template", "cg", str(CHART), *_values_args(tmp_path, values, list(files)))
    assert proc.returncode != 0, f"helm template accepted {values}:\n{proc.stdout[:2000]}"
    return proc.stderr


def ci(name: str) -> Path:
    path = CHART / "ci" / f"{name}-values.yaml"
    assert path.is_file(), path
    return path


# -- lint ------------------------------------------------------------------------------
def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == "0.1.0"
    assert {p.name for p in CI_VALUES} >= {
        "gpu-values.yaml", "autoscaling-values.yaml", "monitoring-values.yaml"}


@pytest.mark.parametrize("values_file", [None, *CI_VALUES],
                         ids=lambda p: "default" if p is None else p.stem)
def test_helm_lint(helm: str, values_file: Path | None) -> None:
    args = ["lint", str(CHART), "--strict"] + (["-f", str(values_file)] if values_file else [])
    proc = _helm(helm, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_values_every_key_is_commented() -> None:
    """Every key of values.yaml has a comment above it, except inside Kubernetes objects
    (resources, security contexts, probes, label maps, lists) that their parent documents."""
    free_form = {"resources", "podSecurityContext", "securityContext", "startupProbe",
                 "livenessProbe", "readinessProbe", "nodeSelector", "tolerations", "labels",
                 "annotations"}
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []
    missing = []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z_][\w.-]*):", line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parents = [k for _, k in stack]
        stack.append((indent, key))
        if any(p in free_form for p in parents):
            continue
        prev = lines[i - 1].strip() if i else ""
        if not prev.startswith("#"):
            missing.append(".".join([*parents, key]))
    assert not missing, f"values.yaml keys without a comment: {missing}"


# -- the default install -------------------------------------------------------------------
def test_default_resources(helm: str, tmp_path: Path) -> None:
    r = template(helm, tmp_path)
    assert r.kinds() == sorted(["ConfigMap", "Deployment", "PodDisruptionBudget", "Pod",
                                "Service", "ServiceAccount"])
    for kind in ("HorizontalPodAutoscaler", "ScaledObject", "TriggerAuthentication",
                 "ServiceMonitor", "PrometheusRule", "Secret"):
        assert not r.all(kind), kind
    dep = r.one("Deployment")
    assert dep["metadata"]["namespace"] == "crowd"
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == r.one("ServiceAccount")["metadata"]["name"]
    c = r.container()
    assert c["image"] == "crowdguard:0.1.0"
    assert c["args"] == ["run"]
    assert set(c["resources"]) == {"requests", "limits"}
    assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert "nodeSelector" not in dep["spec"]["template"]["spec"]
    pdb = r.one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


def test_probes_and_ports(helm: str, tmp_path: Path) -> None:
    r = template(helm, tmp_path)
    c = r.container()
    assert c["ports"] == [{"name": "http", "containerPort": 6066, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    svc = r.one("Service")
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert svc["spec"]["ports"][0]["port"] == 6066
    assert svc["spec"]["selector"] == r.one("Deployment")["spec"]["selector"]["matchLabels"]
    test_pod = r.one("Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = " ".join(test_pod["spec"]["containers"][0]["command"])
    assert "urllib" in script and f"http://{svc['metadata']['name']}:6066/healthz" in script


def test_non_root_read_only(helm: str, tmp_path: Path) -> None:
    r = template(helm, tmp_path)
    pod = r.one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    c = r.container()
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts["/tmp"] == "tmp"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in vols["tmp"]
    assert r.config()["CROWDGUARD_DATA_DIR"].startswith("/tmp/")
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HOME"] == "/tmp"


def test_env_from_configmap_is_valid_settings(helm: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConfigMap holds CROWDGUARD_* names of real settings, in a form Settings parses."""
    from service.settings import Settings

    r = template(helm, tmp_path)
    cm = r.one("ConfigMap", "crowdguard")
    c = r.container()
    assert c["envFrom"] == [{"configMapRef": {"name": cm["metadata"]["name"]}}]
    data = cm["data"]
    unknown = [k for k in data
               if not k.startswith("CROWDGUARD_") or k[len("CROWDGUARD_"):].lower() not in Settings.model_fields]
    assert not unknown, f"ConfigMap keys that are no setting: {unknown}"
    assert "CROWDGUARD_KAFKA_SASL_PASSWORD" not in data
    assert all(isinstance(v, str) for v in data.values())
    # The container's own CROWDGUARD_* env entries must be real settings too.
    env_names = [e["name"] for e in c["env"] if e["name"].startswith("CROWDGUARD_")]
    unknown = [k for k in env_names if k[len("CROWDGUARD_"):].lower() not in Settings.model_fields]
    assert not unknown, f"container env that is no setting: {unknown}"
    s = _settings_from(r, monkeypatch)
    assert s.web_host == "0.0.0.0"
    assert s.web_port == 6066
    assert s.kafka_bootstrap == "kafka:9092"
    assert s.device == "cpu"
    assert s.precision == "auto"
    assert s.log_format == "json"
    assert s.rate_window_s == 604800  # not "6.048e+05"
    assert s.max_message_bytes == 1_000_000
    assert s.consumer_group == "crowdguard"
    assert s.topic_partitions == 4
    assert s.topic_replication_factor == 3  # the chart's default, not the app's 1
    assert s.create_topics is True
    assert s.max_task_series == 100
    assert s.max_worker_series == 500
    assert s.web_advertised_host == POD_IP
    assert s.log_library_level is None  # empty value: the app's default


def test_library_log_level_value(helm: str, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    r = template(helm, tmp_path, {"config": {"logLibraryLevel": "INFO"}})
    assert r.config()["CROWDGUARD_LOG_LIBRARY_LEVEL"] == "INFO"
    assert _settings_from(r, monkeypatch).log_library_level == "INFO"


POD_IP = "10.1.2.3"


def _settings_from(r: Rendered, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Settings as the worker container would build them: the ConfigMap (envFrom), then
    the container's env, with the downward API's status.podIP resolved to POD_IP."""
    from service.settings import Settings

    for k in list(os.environ):
        if k.startswith("CROWDGUARD_"):
            monkeypatch.delenv(k)
    for k, v in r.config().items():
        monkeypatch.setenv(k, v)
    for e in r.container()["env"]:
        if not e["name"].startswith("CROWDGUARD_"):
            continue
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"])
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP":
            monkeypatch.setenv(e["name"], POD_IP)
    return Settings()


def test_advertised_host_is_pod_ip(helm: str, tmp_path: Path) -> None:
    """Replicas bind 0.0.0.0 but advertise their pod IP for forwarded /workers/<id> lookups."""
    for files in ((), (ci("gpu"),), (ci("autoscaling"),)):
        r = template(helm, tmp_path, files=files)
        env = {e["name"]: e for e in r.container()["env"]}
        adv = env["CROWDGUARD_WEB_ADVERTISED_HOST"]
        assert adv == {"name": "CROWDGUARD_WEB_ADVERTISED_HOST",
                       "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}, adv
        assert "CROWDGUARD_WEB_ADVERTISED_HOST" not in r.config()  # per pod, not shared
        assert r.config()["CROWDGUARD_WEB_HOST"] == "0.0.0.0"


def test_topic_settings(helm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kafka.replicationFactor / kafka.createTopics / config.maxTaskSeries reach Settings."""
    r = template(helm, tmp_path, {"kafka": {"replicationFactor": 1, "createTopics": False},
                                  "config": {"maxTaskSeries": 0}})
    assert r.config()["CROWDGUARD_TOPIC_REPLICATION_FACTOR"] == "1"
    assert r.config()["CROWDGUARD_CREATE_TOPICS"] == "false"
    assert r.config()["CROWDGUARD_MAX_TASK_SERIES"] == "0"
    s = _settings_from(r, monkeypatch)
    assert s.topic_replication_factor == 1
    assert s.create_topics is False
    assert s.max_task_series == 0

    r = template(helm, tmp_path, {"kafka": {"replicationFactor": 5}, "config": {"maxTaskSeries": 2000}})
    s = _settings_from(r, monkeypatch)
    assert (s.topic_replication_factor, s.create_topics, s.max_task_series) == (5, True, 2000)


def test_sasl_secret(helm: str, tmp_path: Path) -> None:
    sasl = {"kafka": {"securityProtocol": "SASL_SSL",
                      "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password": "p4ss"}}}
    r = template(helm, tmp_path, sasl)
    secret = r.one("Secret")
    assert secret["data"] == {"sasl-password": "cDRzcw=="}
    env = {e["name"]: e for e in r.container()["env"]}
    ref = env["CROWDGUARD_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": secret["metadata"]["name"], "key": "sasl-password"}
    assert r.config()["CROWDGUARD_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert r.config()["CROWDGUARD_KAFKA_SASL_USERNAME"] == "u"
    assert "p4ss" not in json.dumps(r.config())

    sasl["kafka"]["sasl"].update(password="", existingSecret="kafka-creds", passwordKey="pw")
    r = template(helm, tmp_path, sasl)
    assert not r.all("Secret")
    env = {e["name"]: e for e in r.container()["env"]}
    assert env["CROWDGUARD_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "kafka-creds", "key": "pw"}

    r = template(helm, tmp_path)
    assert "CROWDGUARD_KAFKA_SASL_PASSWORD" not in {e["name"] for e in r.container()["env"]}


# -- GPU -------------------------------------------------------------------------------------
def test_gpu_values(helm: str, tmp_path: Path) -> None:
    r = template(helm, tmp_path, files=(ci("gpu"),))
    pod = r.one("Deployment")["spec"]["template"]["spec"]
    c = r.container()
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["image"] == "crowdguard:0.1.0-gpu"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["runtimeClassName"] == "nvidia"
    assert r.config()["CROWDGUARD_DEVICE"] == "cuda"
    # TLS material from the existing Secret, passed as file paths.
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    tls_dir = mounts["kafka-tls"]["mountPath"]
    assert r.config()["CROWDGUARD_KAFKA_SSL_CAFILE"] == f"{tls_dir}/ca.crt"
    assert {v["name"]: v for v in pod["volumes"]}["kafka-tls"]["secret"]["secretName"] == "crowdguard-kafka-tls"

    # Without the gpu values: no GPU anywhere, device cpu.
    r = template(helm, tmp_path)
    assert r.config()["CROWDGUARD_DEVICE"] == "cpu"
    assert r.container()["image"] == "crowdguard:0.1.0"

    # gpu.enabled alone: default gpu tag derived from appVersion, user nodeSelector kept.
    r = template(helm, tmp_path, {"gpu": {"enabled": True, "count": 2}, "nodeSelector": {"pool": "a"}})
    pod = r.one("Deployment")["spec"]["template"]["spec"]
    assert r.container()["image"] == "crowdguard:0.1.0-gpu"
    assert r.container()["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert pod["nodeSelector"] == {"pool": "a", "nvidia.com/gpu.present": "true"}


# -- autoscaling ---------------------------------------------------------------------------------
def test_keda_scaled_object(helm: str, tmp_path: Path) -> None:
    r = template(helm, tmp_path, files=(ci("autoscaling"),))
    assert not r.all("HorizontalPodAutoscaler")
    dep = r.one("Deployment")
    assert "replicas" not in dep["spec"]
    so = r.one("ScaledObject")
    assert so["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert so["spec"]["maxReplicaCount"] == 12
    (trig,) = so["spec"]["triggers"]
    assert trig["type"] == "kafka"
    md = trig["metadata"]
    assert md["consumerGroup"] == "crowdguard-prod" == r.config()["CROWDGUARD_CONSUMER_GROUP"]
    assert md["topic"] == "crowdguard.submissions" == r.config()["CROWDGUARD_TOPIC_SUBMISSIONS"]
    assert md["bootstrapServers"] == r.config()["CROWDGUARD_KAFKA_BOOTSTRAP"]
    assert md["lagThreshold"] == "500"
    assert md["sasl"] == "scram_sha256"
    ta = r.one("TriggerAuthentication")
    assert trig["authenticationRef"]["name"] == ta["metadata"]["name"]
    params = {e["parameter"]: e["name"] for e in ta["spec"]["env"]}
    assert params == {"username": "CROWDGUARD_KAFKA_SASL_USERNAME",
                      "password": "CROWDGUARD_KAFKA_SASL_PASSWORD"}
    # KEDA resolves them from the scale target's container: ConfigMap and Secret ref.
    assert r.config()["CROWDGUARD_KAFKA_SASL_USERNAME"] == "crowdguard"
    assert "CROWDGUARD_KAFKA_SASL_PASSWORD" in {e["name"] for e in r.container()["env"]}


def test_hpa(helm: str, tmp_path: Path) -> None:
    r = template(helm, tmp_path, {"keda": {"enabled": False},
                                  "autoscaling": {"enabled": True, "maxReplicas": 6}},
                 files=(ci("autoscaling"),))
    assert not r.all("ScaledObject") and not r.all("TriggerAuthentication")
    hpa = r.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["maxReplicas"] == 6
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in r.one("Deployment")["spec"]


# -- monitoring ------------------------------------------------------------------------------------
def _need_files(*names: str) -> None:
    missing = [n for n in names if not (FILES / n).is_file()]
    if missing:
        pytest.fail(f"helm/crowdguard/files/{', '.join(missing)} not written yet "
                    "(owned by the metrics/alerts work)")


def test_monitoring_off_by_default(helm: str, tmp_path: Path) -> None:
    r = template(helm, tmp_path)
    assert not r.all("ServiceMonitor") and not r.all("PrometheusRule")
    assert [d["metadata"]["name"] for d in r.all("ConfigMap")] == ["cg-crowdguard"]


def test_monitoring_values(helm: str, tmp_path: Path) -> None:
    _need_files("alerts.yaml", "dashboard.json")
    r = template(helm, tmp_path, files=(ci("monitoring"),))
    sm = r.one("ServiceMonitor")
    (ep,) = sm["spec"]["endpoints"]
    assert ep["port"] == "http" and ep["path"] == "/metrics"
    assert sm["spec"]["selector"]["matchLabels"] == r.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"

    rule = r.one("PrometheusRule")
    alerts = yaml.safe_load((FILES / "alerts.yaml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"

    dash = r.one("ConfigMap", "-dashboard")
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dash["metadata"]["namespace"] == "monitoring"
    assert dash["metadata"]["annotations"] == {"grafana_folder": "crowdguard"}
    (key,) = dash["data"]
    assert key.endswith(".json")
    assert json.loads(dash["data"][key]) == json.loads((FILES / "dashboard.json").read_text())


# -- bad values must fail ---------------------------------------------------------------------------
@pytest.mark.parametrize("values, where", [
    ({"replicaCount": -1}, "replicaCount"),
    ({"config": {"device": "tpu"}}, "device"),
    ({"config": {"precision": "int4"}}, "precision"),
    ({"notAValue": 1}, "notAValue"),
    ({"config": {"logFormat": "xml"}}, "logFormat"),
    ({"config": {"logLibraryLevel": "LOUD"}}, "logLibraryLevel"),
    ({"config": {"batchSize": 0}}, "batchSize"),
    ({"config": {"batchSize": "many"}}, "batchSize"),
    ({"config": {"rateThreshold": 1.5}}, "rateThreshold"),
    ({"config": {"unknown": True}}, "unknown"),
    ({"kafka": {"bootstrap": ""}}, "bootstrap"),
    ({"kafka": {"bootstrap": "no-port"}}, "bootstrap"),
    ({"kafka": {"partitions": 0}}, "partitions"),
    ({"kafka": {"replicationFactor": 0}}, "replicationFactor"),
    ({"kafka": {"replicationFactor": "3"}}, "replicationFactor"),
    ({"kafka": {"createTopics": "yes"}}, "createTopics"),
    ({"config": {"maxTaskSeries": -1}}, "maxTaskSeries"),
    ({"kafka": {"securityProtocol": "SASL"}}, "securityProtocol"),
    ({"kafka": {"sasl": {"mechanism": "GSSAPI"}}}, "mechanism"),
    ({"gpu": {"count": 0}}, "count"),
    ({"gpu": {"enable": True}}, "enable"),
    ({"autoscaling": {"maxReplicas": 2.5}}, "maxReplicas"),
    ({"keda": {"offsetResetPolicy": "middle"}}, "offsetResetPolicy"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"securityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    ({"containerPort": 70000}, "containerPort"),
    ({"terminationGracePeriodSeconds": 0}, "terminationGracePeriodSeconds"),
], ids=lambda v: json.dumps(v, separators=(",", ":")) if isinstance(v, dict) else "")
def test_schema_rejects(helm: str, tmp_path: Path, values: dict[str, Any], where: str) -> None:
    err = template_fails(helm, tmp_path, values)
    assert "schema" in err and where in err, err


@pytest.mark.parametrize("values, message", [
    ({"replicaCount": 5}, "kafka.partitions"),
    ({"config": {"device": "cuda"}}, "gpu.enabled"),
    ({"autoscaling": {"enabled": True}, "keda": {"enabled": True}}, "mutually exclusive"),
    ({"keda": {"enabled": True, "maxReplicaCount": 5}}, "kafka.partitions"),
    ({"kafka": {"sasl": {"mechanism": "PLAIN", "username": "u", "password": "p"}}}, "securityProtocol"),
    ({"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"mechanism": "PLAIN", "username": "u"}}},
     "existingSecret"),
    ({"kafka": {"tls": {"existingSecret": "t"}}}, "SSL"),
    ({"config": {"dataDir": "/var/lib/crowdguard"}}, "dataDir"),
])
def test_template_guards(helm: str, tmp_path: Path, values: dict[str, Any], message: str) -> None:
    err = template_fails(helm, tmp_path, values)
    assert message in err, err
