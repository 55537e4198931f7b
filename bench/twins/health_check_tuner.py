"""Python twin of health-check-tuner's `tune` action, for bench/lambda_harness.py.

What a good Python team would ship on the managed python3.12 runtime: boto3 clients created once
at init (module level, outside the handler), botocore's standard retry mode with the same attempt
count and timeouts as greenlight_aws::load_sdk_config (4 attempts, connect 3.1 s, 5 s per attempt),
the same environment (template.yaml's HealthCheckTunerFunction) and the same AWS calls in the same
order as functions/health-check-tuner (`tune`):

    GetDeploymentGroup -> DescribeTargetGroups(Names) -> per target group:
    DescribeTargetGroups(TargetGroupArns) + DescribeTargetGroupAttributes (current settings),
    DescribeTags (the recorded `greenlight:snapshot` tag), AddTags (only when none is recorded),
    ModifyTargetGroup / ModifyTargetGroupAttributes (only what differs from the profile).

It answers the same TuningResult JSON. Only `tune` is twinned (the benchmark's action); `restore`
is not. Error mapping is reduced to the error types the state machine matches.
"""

import json
import logging
import os
import re

import boto3
from botocore.config import Config

SNAPSHOT_TAG_KEY = "greenlight:snapshot"
SNAPSHOT_TAG_VERSION = "v1"
DEREGISTRATION_DELAY_ATTRIBUTE = "deregistration_delay.timeout_seconds"
TAG_PATTERN = re.compile(
    r"^v1 interval=(0|[1-9]\d*) timeout=(0|[1-9]\d*) healthy=(0|[1-9]\d*) "
    r"unhealthy=(0|[1-9]\d*) deregistration=(0|[1-9]\d*)$"
)

logger = logging.getLogger()
logger.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper().replace("FATAL", "CRITICAL"))


class TunerError(Exception):
    """An error whose class name is the Lambda errorType the state machine matches."""


class InvalidProfile(TunerError):
    pass


class DeploymentGroupNotFound(TunerError):
    pass


class NoLoadBalancer(TunerError):
    pass


class TargetGroupNotFound(TunerError):
    pass


class CorruptSnapshotTag(TunerError):
    pass


def _env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError as e:
        raise InvalidProfile(f"{name}={raw!r} is not a whole number") from e


def _profile_from_env():
    """HEALTH_CHECK_INTERVAL_SECONDS (5), HEALTH_CHECK_TIMEOUT_SECONDS (2), HEALTHY_THRESHOLD (2),
    UNHEALTHY_THRESHOLD (2), DEREGISTRATION_DELAY_SECONDS (30), checked against ALB's limits."""
    profile = {
        "intervalSeconds": _env_int("HEALTH_CHECK_INTERVAL_SECONDS", 5),
        "timeoutSeconds": _env_int("HEALTH_CHECK_TIMEOUT_SECONDS", 2),
        "healthyThreshold": _env_int("HEALTHY_THRESHOLD", 2),
        "unhealthyThreshold": _env_int("UNHEALTHY_THRESHOLD", 2),
    }
    deregistration = _env_int("DEREGISTRATION_DELAY_SECONDS", 30)
    if not 5 <= profile["intervalSeconds"] <= 300:
        raise InvalidProfile("HEALTH_CHECK_INTERVAL_SECONDS must be 5-300")
    if not 2 <= profile["timeoutSeconds"] <= 120:
        raise InvalidProfile("HEALTH_CHECK_TIMEOUT_SECONDS must be 2-120")
    if profile["timeoutSeconds"] >= profile["intervalSeconds"]:
        raise InvalidProfile("HEALTH_CHECK_TIMEOUT_SECONDS must be below the interval")
    if not 2 <= profile["healthyThreshold"] <= 10:
        raise InvalidProfile("HEALTHY_THRESHOLD must be 2-10")
    if not 2 <= profile["unhealthyThreshold"] <= 10:
        raise InvalidProfile("UNHEALTHY_THRESHOLD must be 2-10")
    if not 0 <= deregistration <= 3600:
        raise InvalidProfile("DEREGISTRATION_DELAY_SECONDS must be 0-3600")
    return profile, deregistration


# --- init: configuration and clients, once per execution environment ---------------------------
PROFILE, DEREGISTRATION = _profile_from_env()
_BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=3.1,
    read_timeout=5,
)
CODEDEPLOY = boto3.client("codedeploy", config=_BOTO_CONFIG)
ELBV2 = boto3.client("elbv2", config=_BOTO_CONFIG)


def _error_code(err):
    return getattr(err, "response", {}).get("Error", {}).get("Code", "")


def target_group_arns(application, group):
    try:
        info = CODEDEPLOY.get_deployment_group(
            applicationName=application, deploymentGroupName=group
        )["deploymentGroupInfo"]
    except CODEDEPLOY.exceptions.DeploymentGroupDoesNotExistException as e:
        raise DeploymentGroupNotFound(str(e)) from e
    except CODEDEPLOY.exceptions.ApplicationDoesNotExistException as e:
        raise DeploymentGroupNotFound(str(e)) from e
    names = [
        tg["name"]
        for tg in info.get("loadBalancerInfo", {}).get("targetGroupInfoList", [])
        if tg.get("name")
    ]
    if not names:
        raise NoLoadBalancer(f"deployment group {group!r} of {application!r} has no target group")
    try:
        described = ELBV2.describe_target_groups(Names=names)["TargetGroups"]
    except ELBV2.exceptions.TargetGroupNotFoundException as e:
        raise TargetGroupNotFound(str(e)) from e
    by_name = {tg["TargetGroupName"]: tg["TargetGroupArn"] for tg in described}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise TargetGroupNotFound(f"DescribeTargetGroups did not return {missing}")
    return [by_name[n] for n in names]


def snapshot(arn):
    try:
        groups = ELBV2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
        attributes = ELBV2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    except ELBV2.exceptions.TargetGroupNotFoundException as e:
        raise TargetGroupNotFound(str(e)) from e
    tg = next((g for g in groups if g["TargetGroupArn"] == arn), None)
    if tg is None:
        raise TargetGroupNotFound(f"{arn}: DescribeTargetGroups did not return it")
    delay = next(a["Value"] for a in attributes if a["Key"] == DEREGISTRATION_DELAY_ATTRIBUTE)
    return {
        "targetGroupArn": arn,
        "healthCheck": {
            "intervalSeconds": tg["HealthCheckIntervalSeconds"],
            "timeoutSeconds": tg["HealthCheckTimeoutSeconds"],
            "healthyThreshold": tg["HealthyThresholdCount"],
            "unhealthyThreshold": tg["UnhealthyThresholdCount"],
        },
        "deregistrationDelaySeconds": int(delay.strip()),
    }


def recorded_snapshot(arn):
    descriptions = ELBV2.describe_tags(ResourceArns=[arn])["TagDescriptions"]
    value = next(
        (
            t.get("Value", "")
            for d in descriptions
            if d.get("ResourceArn", arn) == arn
            for t in d.get("Tags", [])
            if t["Key"] == SNAPSHOT_TAG_KEY
        ),
        None,
    )
    if value is None:
        return None
    m = TAG_PATTERN.match(value)
    if not m:
        raise CorruptSnapshotTag(f"target group {arn}: tag {SNAPSHOT_TAG_KEY}={value!r} is corrupt")
    interval, timeout, healthy, unhealthy, deregistration = (int(g) for g in m.groups())
    return {
        "targetGroupArn": arn,
        "healthCheck": {
            "intervalSeconds": interval,
            "timeoutSeconds": timeout,
            "healthyThreshold": healthy,
            "unhealthyThreshold": unhealthy,
        },
        "deregistrationDelaySeconds": deregistration,
    }


def encode_tag(snap):
    hc = snap["healthCheck"]
    return (
        f"{SNAPSHOT_TAG_VERSION} interval={hc['intervalSeconds']} timeout={hc['timeoutSeconds']} "
        f"healthy={hc['healthyThreshold']} unhealthy={hc['unhealthyThreshold']} "
        f"deregistration={snap['deregistrationDelaySeconds']}"
    )


def tune_target_group(arn):
    current = snapshot(arn)
    recorded = recorded_snapshot(arn)
    if recorded is None:
        keep = current
        ELBV2.add_tags(ResourceArns=[arn], Tags=[{"Key": SNAPSHOT_TAG_KEY, "Value": encode_tag(current)}])
    else:
        keep = dict(recorded, targetGroupArn=arn)
    if current["healthCheck"] != PROFILE:
        ELBV2.modify_target_group(
            TargetGroupArn=arn,
            HealthCheckIntervalSeconds=PROFILE["intervalSeconds"],
            HealthCheckTimeoutSeconds=PROFILE["timeoutSeconds"],
            HealthyThresholdCount=PROFILE["healthyThreshold"],
            UnhealthyThresholdCount=PROFILE["unhealthyThreshold"],
        )
    if current["deregistrationDelaySeconds"] != DEREGISTRATION:
        ELBV2.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": DEREGISTRATION_DELAY_ATTRIBUTE, "Value": str(DEREGISTRATION)}],
        )
    logger.info(json.dumps({"message": "tuned target group", "target_group": arn,
                            "recorded_before": recorded is not None}))
    return keep


def allow_traffic_seconds(hc):
    return hc["healthyThreshold"] * hc["intervalSeconds"] + hc["intervalSeconds"]


def handler(event, context):
    if event.get("action") != "tune":
        raise TunerError(f"this twin only implements tune, not {event.get('action')!r}")
    pipeline = event["pipeline"]
    arns = target_group_arns(pipeline["application"], pipeline["deploymentGroup"])
    snapshots = [tune_target_group(arn) for arn in arns]
    after = allow_traffic_seconds(PROFILE)
    result = {
        "snapshots": snapshots,
        "predictedAllowTraffic": {
            "beforeSeconds": max((allow_traffic_seconds(s["healthCheck"]) for s in snapshots), default=after),
            "afterSeconds": after,
        },
        "predictedBlockTraffic": {
            "beforeSeconds": max((s["deregistrationDelaySeconds"] for s in snapshots), default=DEREGISTRATION),
            "afterSeconds": DEREGISTRATION,
        },
    }
    logger.info(json.dumps({"message": "tuned", "execution": event.get("executionName"),
                            "target_groups": len(snapshots)}))
    return result
