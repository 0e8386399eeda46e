"""The Helm chart in deploy/helm/review-bot: rendered with `helm template`, every object validated against
the Kubernetes JSON schemas (kubernetes-validate, strict: an unknown field fails too), then the properties
a platform engineer relies on: replicas, security context, probes, shutdown, secrets, PDB, and that the
chart documents every setting of the bot.

`helm` comes from PATH or $HELM; .ci/run installs it (and kubernetes-validate) where they are missing.
Outside CI a machine without them skips this module; in CI (CI set) it fails instead.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from pydantic import SecretStr

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "review-bot"
RELEASE = "rb"
FULLNAME = "rb-review-bot"
BOT_UID = 10001
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas here.
KUBE_VERSIONS = ("1.29.0", "1.37.0")

# What the pod cannot start without: the bot's Slack identity, its signing key, and where MLflow is.
REQUIRED_SECRETS = {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "REVIEW_SIGNING_KEY", "MLFLOW_TRACKING_URI"}
# Settings that may carry a password although they are not SecretStr.
CREDENTIAL_URLS = {"MLFLOW_TRACKING_URI", "REDIS_URL"}
SECRET_VALUES = {
    "SLACK_BOT_TOKEN": "xoxb-chart-test-bot-token",
    "SLACK_SIGNING_SECRET": "chart-test-signing-secret",
    "REVIEW_SIGNING_KEY": "chart-test-signing-key",
    "MLFLOW_TRACKING_URI": "http://bot:chart-test-mlflow-password@mlflow.mlflow.svc:5000",
    "REDIS_URL": "redis://:chart-test-redis-password@redis.data.svc:6379/0",
}
BASE = tuple(f"--set-string=secrets.{key}={value}" for key, value in SECRET_VALUES.items())
EVERYTHING_ON = (
    *BASE,
    "--set=redis.enabled=true",
    "--set=ingress.enabled=true",
    "--set-string=ingress.className=nginx",
    "--set=ingress.tls[0].secretName=review-bot-tls",
    "--set=ingress.tls[0].hosts[0]=review-bot.example.com",
    "--set-string=config.WEB_CONCURRENCY=2",
)
EXISTING_SECRET = ("--set-string=existingSecret=team-review-bot",)
SCENARIOS = {"defaults": BASE, "everything-on": EVERYTHING_ON, "existing-secret": EXISTING_SECRET}

# Where the chart deliberately differs from the bot's own default, and why.
CHART_CHOICES = {"log_format": "json: one object per line for the cluster's log collector"}


# --- rendering ------------------------------------------------------------------------------------------


def _missing(what: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed; .ci/run installs it", pytrace=False)
    pytest.skip(f"{what} is not installed (bash .ci/run installs it)")


def _helm() -> str:
    helm = os.environ.get("HELM") or shutil.which("helm")
    if helm is None:
        _missing("helm")
    return str(helm)


def _validate(document: dict[str, Any], kube_version: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        _missing("kubernetes-validate (pip)")
    kubernetes_validate.validate(document, kube_version, strict=True)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last one silently; kubectl
    and the API server may not agree on which wins)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"keys given twice: {repeated}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_helm(), "template", RELEASE, str(CHART), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@functools.cache
def render(*args: str) -> list[dict[str, Any]]:
    result = helm_template(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.load_all(result.stdout, Loader=_UniqueKeyLoader) if doc]


def render_error(*args: str) -> str:
    result = helm_template(*args)
    assert result.returncode != 0, "helm template rendered what it should have refused"
    return result.stderr


def objects(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def the(docs: list[dict[str, Any]], kind: str, name: str = FULLNAME) -> dict[str, Any]:
    found = [doc for doc in objects(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def bot_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = the(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def config_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    return the(docs, "ConfigMap")["data"]


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        container
        for deployment in objects(docs, "Deployment")
        for container in deployment["spec"]["template"]["spec"]["containers"]
    ]


def setting_names() -> set[str]:
    """Each Settings field as the environment variable it is read from."""
    return {
        info.validation_alias if isinstance(info.validation_alias, str) else name.upper()
        for name, info in Settings.model_fields.items()
    }


def secret_setting_names() -> set[str]:
    secret = {
        info.validation_alias if isinstance(info.validation_alias, str) else name.upper()
        for name, info in Settings.model_fields.items()
        if SecretStr in getattr(info.annotation, "__args__", (info.annotation,))
    }
    return secret | CREDENTIAL_URLS


def readme_setting_names() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, flags=re.MULTILINE))


def chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


# --- the chart as a whole -------------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_object_is_valid_kubernetes(scenario: str, kube_version: str) -> None:
    docs = render(*SCENARIOS[scenario], f"--kube-version={kube_version}")
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"} <= kinds
    for doc in docs:
        _validate(doc, kube_version)


def test_the_schema_check_is_strict() -> None:
    """The validation above can fail: a misspelt field and a wrong type are refused."""
    deployment = the(render(*BASE), "Deployment")
    _validate(deployment, KUBE_VERSIONS[-1])
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    import kubernetes_validate  # there: _validate above has run

    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            _validate(broken, KUBE_VERSIONS[-1])


def test_helm_lint_is_clean() -> None:
    result = subprocess.run(
        [_helm(), "lint", "--strict", str(CHART), *BASE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_charts_app_version_is_the_packages() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert bot_container(render(*BASE))["image"] == f"review-bot:{project['version']}"


# --- the Deployment -------------------------------------------------------------------------------------


def test_runs_at_least_two_replicas_rolling_one_at_a_time() -> None:
    spec = the(render(*BASE), "Deployment")["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_runs_as_the_images_non_root_user_with_a_read_only_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^USER {BOT_UID}:{BOT_UID}$", dockerfile, flags=re.MULTILINE)
    docs = render(*BASE)
    pod = the(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == BOT_UID
    assert pod["automountServiceAccountToken"] is False
    context = bot_container(docs)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == BOT_UID


@pytest.mark.parametrize("scenario", ["defaults", "everything-on"])
def test_every_container_is_locked_down_and_sized(scenario: str) -> None:
    for container in containers(render(*SCENARIOS[scenario])):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
        assert "add" not in context["capabilities"], container["name"]
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) >= {"cpu", "memory"}, (container["name"], bound)


def _port(container: dict[str, Any], port: str | int) -> int:
    if isinstance(port, int):
        return port
    (number,) = [item["containerPort"] for item in container["ports"] if item["name"] == port]
    return number


@pytest.mark.parametrize("port", ["3000", "8080"])
def test_probes_check_the_bots_own_endpoints_on_its_port(port: str) -> None:
    docs = render(*BASE, f"--set-string=config.PORT={port}")
    container = bot_container(docs)
    assert config_data(docs)["PORT"] == port
    liveness = container["livenessProbe"]["httpGet"]
    readiness = container["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz"
    assert readiness["path"] == "/readyz"
    assert _port(container, liveness["port"]) == int(port)
    assert _port(container, readiness["port"]) == int(port)
    # Failing readiness takes a replica out of the Service; liveness must not restart it for that.
    assert container["livenessProbe"]["httpGet"]["path"] != "/readyz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"


def test_termination_grace_outlasts_the_pause_and_the_bots_shutdown_bound() -> None:
    docs = render(*BASE)
    pod = the(docs, "Deployment")["spec"]["template"]["spec"]
    command = bot_container(docs)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = int(command[1])
    shutdown_bound = int(config_data(docs)["SHUTDOWN_GRACE_SECONDS"])
    assert pause > 0
    assert pod["terminationGracePeriodSeconds"] > pause + shutdown_bound


def test_a_shutdown_bound_longer_than_the_grace_period_is_refused() -> None:
    error = render_error(*BASE, "--set-string=config.SHUTDOWN_GRACE_SECONDS=60")
    assert "terminationGracePeriodSeconds (40)" in error
    longer = render(
        *BASE, "--set-string=config.SHUTDOWN_GRACE_SECONDS=60", "--set=terminationGracePeriodSeconds=70"
    )
    assert the(longer, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 70


def _mounts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mount path -> the pod volume behind it, for the bot's container."""
    pod = the(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = bot_container(docs)["volumeMounts"]
    assert not any(mount.get("readOnly", False) for mount in mounts)
    return {mount["mountPath"]: volumes[mount["name"]] for mount in mounts}


def test_tmp_is_the_one_writable_place_and_holds_matplotlib() -> None:
    docs = render(*BASE)
    mounts = _mounts(docs)
    assert list(mounts) == ["/tmp"]
    assert "emptyDir" in mounts["/tmp"]
    env = env_of(bot_container(docs))
    assert env["MPLCONFIGDIR"]["value"] == "/tmp/matplotlib"
    # One worker: its own registry answers /metrics, no multiprocess directory.
    assert "PROMETHEUS_MULTIPROC_DIR" not in env


def test_several_workers_share_an_empty_prometheus_directory() -> None:
    docs = render(*BASE, "--set-string=config.WEB_CONCURRENCY=3")
    directory = env_of(bot_container(docs))["PROMETHEUS_MULTIPROC_DIR"]["value"]
    assert directory.startswith("/tmp/")
    mounts = _mounts(docs)
    assert set(mounts) == {"/tmp", directory}
    # Its own emptyDir: there, and empty, before the first worker starts (prometheus_client needs both).
    assert "emptyDir" in mounts[directory]
    assert mounts[directory] is not mounts["/tmp"]


def test_pods_are_annotated_for_prometheus_scraping() -> None:
    docs = render(*BASE, "--set-string=config.PORT=8080")
    annotations = the(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == "8080"
    assert _port(bot_container(docs), "http") == 8080


def test_a_changed_setting_rolls_the_pods() -> None:
    def checksum(*args: str) -> str:
        return the(render(*args), "Deployment")["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]

    assert checksum(*BASE) != checksum(*BASE, "--set-string=config.REVIEW_CHANNEL=C0CHANGED")


# --- Service, Ingress, PDB ------------------------------------------------------------------------------


def test_the_service_selects_the_bots_pods_on_their_http_port() -> None:
    docs = render(*EVERYTHING_ON)
    deployment = the(docs, "Deployment")
    service = the(docs, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert _port(bot_container(docs), port["targetPort"]) == 3000
    # The quick-start Redis' pods are not the bot's: the bot's Service must not send Slack to them.
    redis_pod_labels = the(docs, "Deployment", f"{FULLNAME}-redis")["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= redis_pod_labels.items()


def test_there_is_no_ingress_unless_asked_for() -> None:
    assert objects(render(*BASE), "Ingress") == []


def test_the_ingress_publishes_only_what_slack_and_mlflow_post_to() -> None:
    docs = render(*EVERYTHING_ON)
    ingress = the(docs, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "review-bot-tls", "hosts": ["review-bot.example.com"]}]
    (rule,) = ingress["spec"]["rules"]
    paths = rule["http"]["paths"]
    assert [path["path"] for path in paths] == ["/slack/events", "/mlflow/webhook"]
    for path in paths:
        # Exact: a Prefix "/" or "/slack" would publish /metrics or anything added later.
        assert path["pathType"] == "Exact"
        assert path["backend"]["service"] == {"name": FULLNAME, "port": {"name": "http"}}


def test_the_disruption_budget_keeps_one_replica_and_lets_a_drain_proceed() -> None:
    docs = render(*BASE)
    deployment = the(docs, "Deployment")
    budget = the(docs, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]


# --- settings and secrets -------------------------------------------------------------------------------


def test_secrets_reach_the_pod_by_reference_only() -> None:
    docs = render(*BASE)
    env = env_of(bot_container(docs))
    for name in secret_setting_names():
        reference = env[name]["valueFrom"]["secretKeyRef"]
        assert reference["name"] == FULLNAME, name
        assert reference["key"] == name
        assert reference["optional"] is (name not in REQUIRED_SECRETS | {"REDIS_URL"}), name
        assert name not in config_data(docs), name
    secret = the(docs, "Secret")
    assert secret["stringData"] == SECRET_VALUES
    # No secret value is written anywhere but the Secret.
    rendered = yaml.safe_dump_all([doc for doc in docs if doc["kind"] != "Secret"])
    for value in SECRET_VALUES.values():
        assert value not in rendered


def test_an_existing_secret_is_referenced_by_name_and_none_is_created() -> None:
    docs = render(*EXISTING_SECRET)
    assert objects(docs, "Secret") == []
    env = env_of(bot_container(docs))
    references = [item["valueFrom"]["secretKeyRef"] for item in env.values() if "valueFrom" in item]
    assert {reference["key"] for reference in references} >= secret_setting_names()
    assert {reference["name"] for reference in references} == {"team-review-bot"}
    annotations = the(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" not in annotations


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_a_missing_required_secret_is_refused_by_name(missing: str) -> None:
    args = [arg for arg in BASE if f"secrets.{missing}=" not in arg]
    assert f"secrets.{missing} is required" in render_error(*args)


def test_several_replicas_without_a_shared_redis_are_refused() -> None:
    without_redis = [arg for arg in BASE if "secrets.REDIS_URL=" not in arg]
    assert "REDIS_URL" in render_error(*without_redis)
    single = render(*without_redis, "--set=replicaCount=1")
    assert env_of(bot_container(single))["REDIS_URL"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_the_chart_documents_every_setting_of_the_bot() -> None:
    values = chart_values()
    documented = set(values["config"]) | set(values["secrets"])
    assert {"SLACK_BOT_TOKEN", "LOG_LEVEL"} <= readme_setting_names()  # the table was found
    assert setting_names() - documented == set()
    # Set by the chart itself (from metrics.multiprocDir, when WEB_CONCURRENCY > 1), not a config key.
    chart_managed = {"PROMETHEUS_MULTIPROC_DIR"}
    assert readme_setting_names() - documented - chart_managed == set()
    assert all(name in (CHART / "templates" / "deployment.yaml").read_text() for name in chart_managed)
    # Secrets never sit in the ConfigMap's values, where `helm get values` and the ConfigMap show them.
    assert secret_setting_names() & set(values["config"]) == set()


def test_the_charts_config_gives_the_bots_own_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loaded as the environment, the rendered ConfigMap yields the Settings the bot has with none,
    except where the chart chooses otherwise (CHART_CHOICES): its defaults cannot drift from the bot's."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    defaults = Settings(_env_file=None)
    data = config_data(render(*BASE))
    for name, value in data.items():
        monkeypatch.setenv(name, value)
    charted = Settings(_env_file=None)
    differing = {name for name in Settings.model_fields if getattr(charted, name) != getattr(defaults, name)}
    assert differing == CHART_CHOICES.keys() & Settings.model_fields.keys()


def test_numbers_written_without_quotes_reach_the_bot_as_integers(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("config:\n  MAX_IMAGE_BYTES: 10485760\n  HISTORY_CACHE_TTL: 86400\n  REVIEW_CHANNEL:\n")
    result = helm_template(*BASE, f"--values={values}")
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    data = config_data(docs)
    assert data["MAX_IMAGE_BYTES"] == "10485760"  # not 1.048576e+07
    assert data["HISTORY_CACHE_TTL"] == "86400"
    assert "REVIEW_CHANNEL" not in data  # empty: the bot's default


# --- the quick-start Redis ------------------------------------------------------------------------------


def test_no_redis_is_deployed_unless_asked_for() -> None:
    docs = render(*BASE)
    assert [doc["metadata"]["name"] for doc in docs if "redis" in doc["metadata"]["name"]] == []


def test_the_quick_start_redis_is_marked_and_wired_to_the_bot() -> None:
    docs = render(*EVERYTHING_ON)
    name = f"{FULLNAME}-redis"
    deployment = the(docs, "Deployment", name)
    service = the(docs, "Service", name)
    for item in (deployment, service):
        assert "not-for-production" in " ".join(item["metadata"]["annotations"]), item["kind"]
    assert deployment["spec"]["replicas"] == 1
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    env = env_of(bot_container(docs))
    assert env["REDIS_URL"] == {"name": "REDIS_URL", "value": f"redis://{name}:{port['port']}/0"}
    names = [item["name"] for item in bot_container(docs)["env"]]
    assert names.count("REDIS_URL") == 1
