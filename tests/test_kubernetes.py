"""deploy/kubernetes/: every manifest is valid against the Kubernetes API's own schemas (the
`kubernetes-validate` package ships them: no cluster, no network), strictly (an unknown or
misspelled field fails), and each keeps the job's promises: one run (or one follower) at a time,
a grace period longer than the job's own, the image's user, secrets only by reference, and for
the follow Deployment, a freshness probe and its metrics port."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from backfill.config.parse import duration
from backfill.config.settings import SECRET_VARIABLES, Settings
from backfill.config.tenants import resolve_tenants

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
# The oldest Kubernetes these manifests are for (CronJob timeZone, podFailurePolicy), and the
# newest the package has schemas of.
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
SHUTDOWN_GRACE = Settings().shutdown_grace(follow=False)
FOLLOW_GRACE = Settings().shutdown_grace(follow=True)


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]


ALL = {path.name: documents(path) for path in MANIFESTS}


def of_kind(kind: str, file: str | None = None) -> list[dict[str, Any]]:
    return [
        doc
        for name, docs in ALL.items()
        for doc in docs
        if doc["kind"] == kind and file in {None, name}
    ]


def cronjob(file: str) -> dict[str, Any]:
    (found,) = of_kind("CronJob", file)
    return found


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a CronJob or of a Deployment."""
    spec = workload["spec"]
    template = (
        spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
    )
    found: dict[str, Any] = template["spec"]
    return found


def container(job: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod(job)["containers"]
    return dict(only)


def mounts(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the volume mounted there."""
    volumes = {volume["name"]: volume for volume in pod(job).get("volumes", [])}
    return {
        mount["mountPath"]: volumes[mount["name"]]
        for mount in container(job).get("volumeMounts", [])
    }


def env(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container(job).get("env", [])}


def under(path: str, directory: str) -> bool:
    return PurePosixPath(directory) in PurePosixPath(path).parents


def dockerfile_user() -> int:
    users = re.findall(r"^USER\s+(\d+)", (ROOT / "Dockerfile").read_text("utf-8"), re.MULTILINE)
    return int(users[-1])


def test_the_manifests_are_there() -> None:
    assert set(ALL) == {
        "secret.example.yaml",
        "cronjob.yaml",
        "cronjob-resume-from-tinybird.yaml",
        "cronjob-tenants-indexed.yaml",
        "deployment-follow.yaml",
    }
    assert len(of_kind("CronJob")) == 3
    assert len(of_kind("Deployment")) == 1


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    for doc in ALL[path.name]:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    "breakage",
    ["concurrencyPolicy: [Forbid]", "concurrencyPolicies: Forbid", "schedule: 15"],
)
def test_the_validator_catches_a_broken_manifest(breakage: str) -> None:
    text = (ROOT / "deploy" / "kubernetes" / "cronjob.yaml").read_text("utf-8")
    broken = text.replace("concurrencyPolicy: Forbid", breakage, 1)
    assert broken != text
    (_, doc) = [doc for doc in yaml.safe_load_all(broken) if doc]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)


def assert_runs_as_the_image_and_keeps_secrets_out(workload: dict[str, Any]) -> None:
    security = pod(workload)["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == dockerfile_user()
    main = container(workload)
    assert main["args"][0] == "run"
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    # A secret is never written in a manifest: from a Secret, or a file mounted from one.
    for name, item in env(workload).items():
        secret = name in SECRET_VARIABLES or name in {"AUTH0_CLIENT_ID"}
        assert not secret or "secretKeyRef" in item.get("valueFrom", {}), name


@pytest.mark.parametrize(
    "file", ["cronjob.yaml", "cronjob-resume-from-tinybird.yaml", "cronjob-tenants-indexed.yaml"]
)
def test_each_cronjob_keeps_the_jobs_promises(file: str) -> None:
    job = cronjob(file)
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod(job)
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] > SHUTDOWN_GRACE + 10
    assert_runs_as_the_image_and_keeps_secrets_out(job)
    main = container(job)
    # Failing for good on the exit codes that a retry cannot change.
    (fail,) = [
        rule
        for rule in job["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
        if rule["action"] == "FailJob"
    ]
    assert fail["onExitCodes"]["containerName"] == main["name"]
    assert set(fail["onExitCodes"]["values"]) == {2, 3, 4, 5, 6, 8, 9}


def test_the_follow_deployment_never_overlaps_drains_and_probes_freshness() -> None:
    (follow,) = of_kind("Deployment", "deployment-follow.yaml")
    assert follow["spec"]["replicas"] == 1
    assert follow["spec"]["strategy"] == {"type": "Recreate"}  # never two followers at once
    assert_runs_as_the_image_and_keeps_secrets_out(follow)
    spec = pod(follow)
    assert spec["terminationGracePeriodSeconds"] > FOLLOW_GRACE + 10
    main = container(follow)
    args = main["args"]
    assert args[:2] == ["run", "--follow"]
    # The metrics port the job serves is the one the pod exposes and announces.
    port = int(args[args.index("--metrics-port") + 1])
    assert [item["containerPort"] for item in main["ports"]] == [port]
    assert follow["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    # The probe is `status --max-lag` with a duration the command accepts, on readiness (a
    # liveness probe would restart a first backfill that is not caught up yet).
    assert "livenessProbe" not in main
    probe = main["readinessProbe"]["exec"]["command"]
    assert probe[:3] == ["auth0-backfill", "status", "--max-lag"]
    assert duration(probe[3], "--max-lag").total_seconds() >= 5 * 60
    # Its checkpoint on a claim of its own, where AUTH0_BACKFILL_STATE says.
    volumes = mounts(follow)
    (directory,) = [
        path for path in volumes if under(env(follow)["AUTH0_BACKFILL_STATE"]["value"], path)
    ]
    claim = volumes[directory]["persistentVolumeClaim"]["claimName"]
    (pvc,) = [doc for doc in of_kind("PersistentVolumeClaim", "deployment-follow.yaml")]
    assert pvc["metadata"]["name"] == claim and pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_the_secret_example_holds_placeholders_only() -> None:
    (secret,) = of_kind("Secret")
    assert "data" not in secret
    values = secret["stringData"]
    assert set(values) == {"AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "TINYBIRD_TOKEN"}
    assert all(value.startswith("replace-with-") for value in values.values())


def test_one_tenant_keeps_its_checkpoint_on_a_claim_and_reads_secret_files() -> None:
    job = cronjob("cronjob.yaml")
    variables = env(job)
    state = variables["AUTH0_BACKFILL_STATE"]["value"]
    volumes = mounts(job)
    (directory,) = [path for path in volumes if under(state, path)]
    claim = volumes[directory]["persistentVolumeClaim"]["claimName"]
    assert claim in {doc["metadata"]["name"] for doc in of_kind("PersistentVolumeClaim")}
    (secret,) = of_kind("Secret")
    for name in ("AUTH0_CLIENT_SECRET", "TINYBIRD_TOKEN"):
        path = variables[f"{name}_FILE"]["value"]
        (mounted,) = [where for where in volumes if under(path, where)]
        assert volumes[mounted]["secret"]["secretName"] == secret["metadata"]["name"]
        assert PurePosixPath(path).name in secret["stringData"]
        assert name not in variables  # the file, not the environment
    assert container(job)["securityContext"]["readOnlyRootFilesystem"] is True


def test_resume_from_tinybird_needs_no_volume() -> None:
    job = cronjob("cronjob-resume-from-tinybird.yaml")
    assert "--resume-from-tinybird" in container(job)["args"]
    assert "volumes" not in pod(job) and "volumeMounts" not in container(job)
    assert "AUTH0_BACKFILL_STATE" not in env(job)
    assert {"AUTH0_CLIENT_SECRET", "TINYBIRD_TOKEN"} <= set(env(job))


def test_the_indexed_job_splits_a_tenants_file_across_its_pods(tmp_path: Path) -> None:
    job = cronjob("cronjob-tenants-indexed.yaml")
    spec = job["spec"]["jobTemplate"]["spec"]
    assert spec["completionMode"] == "Indexed"
    shards = spec["completions"]
    assert shards == spec["parallelism"] > 1
    args = container(job)["args"]
    assert args[args.index("--shard") + 1] == f"$(JOB_COMPLETION_INDEX)/{shards}"

    # The [[tenants]] file comes from the ConfigMap, mounted where --config says.
    config = PurePosixPath(args[args.index("--config") + 1])
    volumes = mounts(job)
    (configmap,) = of_kind("ConfigMap", "cronjob-tenants-indexed.yaml")
    assert volumes[str(config.parent)]["configMap"]["name"] == configmap["metadata"]["name"]
    text = configmap["data"][config.name]

    # ... and is a settings file the job accepts, each tenant's state on the shared claim.
    settings_file = tmp_path / config.name
    settings_file.write_text(text)
    names = set(re.findall(r'_env = "(\w+)"', text))
    tenants = resolve_tenants({}, {name: "placeholder" for name in names}, settings_file)
    assert len(tenants) >= 2
    (state_dir,) = [path for path, volume in volumes.items() if "persistentVolumeClaim" in volume]
    for tenant in tenants:
        assert under(str(tenant.state), state_dir), tenant.tenant_name
    assert len({tenant.state for tenant in tenants}) == len(tenants)
    claim = volumes[state_dir]["persistentVolumeClaim"]["claimName"]
    (pvc,) = [doc for doc in of_kind("PersistentVolumeClaim") if doc["metadata"]["name"] == claim]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # every pod mounts it
    assert [source["secretRef"]["name"] for source in container(job)["envFrom"]]
