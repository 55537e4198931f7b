"""Python twin of deployment-watcher's `status` action, for bench/lambda_harness.py.

What a good Python team would ship on the managed python3.12 runtime: the three boto3 clients the
Rust function creates (CodeDeploy, Step Functions, Auto Scaling) made once at init, botocore's
standard retry mode with greenlight_aws::load_sdk_config's attempts and timeouts (4 attempts,
connect 3.1 s, 5 s per attempt), template.yaml's DeploymentWatcherFunction environment, and the
same AWS calls as functions/deployment-watcher `status`:

    GetDeployment -> ListDeploymentTargets (every page) -> BatchGetDeploymentTargets (25 a call)
    [-> StopDeployment(autoRollbackEnabled) past the deadline]

The answer is the same StatusReport JSON (status, phase, per-phase ledger with predictions, next
step, wait), ported from greenlight_core::watch (milestones, phase_of, ledger, wait_seconds,
assess) and, at a terminal status, the same embedded-metric-format lines on stdout. Reduced: the
post-reroute-overdue report is not ported (the benchmark's deployment has ended), and only
`status` is twinned.
"""

import json
import os
import sys
import time
from datetime import datetime

import boto3
from botocore.config import Config

INSTALL_EVENTS = {"ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
                  "ApplicationStart", "ValidateService"}
ALLOW_TRAFFIC_EVENTS = {"BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"}
BLOCK_TRAFFIC_EVENTS = {"BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"}
PHASES = ["Queued", "Provisioning", "Installing", "ReadyWait", "Rerouting", "Terminating", "Done"]
TERMINAL = {"Succeeded", "Failed", "Stopped"}
BATCH_GET_TARGETS_MAX = 25
OVERDUE_DIVISOR = 4
NAMESPACE = "Greenlight"


class WatcherError(Exception):
    """An error whose class name is the Lambda errorType the state machine matches."""


class InvalidInput(WatcherError):
    pass


class DeploymentNotFound(WatcherError):
    pass


def _env_int(name, default):
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


# --- init: configuration and clients, once per execution environment ---------------------------
STATE_MACHINE_ARN = os.environ["STATE_MACHINE_ARN"].strip()
DEPLOYMENT_TIMEOUT_SECONDS = _env_int("DEPLOYMENT_TIMEOUT_SECONDS", 3600)
POST_REROUTE_TIMEOUT_SECONDS = _env_int("POST_REROUTE_TIMEOUT_SECONDS", 10800)
MIN_WAIT = _env_int("MIN_WAIT_SECONDS", 5)
MAX_WAIT = max(_env_int("MAX_WAIT_SECONDS", 60), MIN_WAIT)
if MIN_WAIT < 1:
    raise ValueError("MIN_WAIT_SECONDS must be at least 1 so the status loop cannot spin")
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3.1, read_timeout=5)
CODEDEPLOY = boto3.client("codedeploy", config=_BOTO_CONFIG)
SFN = boto3.client("stepfunctions", config=_BOTO_CONFIG)
AUTOSCALING = boto3.client("autoscaling", config=_BOTO_CONFIG)


def _ms(value):
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else None


def read_deployment(deployment_id):
    try:
        info = CODEDEPLOY.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        ids, token = [], None
        while True:
            kwargs = {"deploymentId": deployment_id}
            if token:
                kwargs["nextToken"] = token
            page = CODEDEPLOY.list_deployment_targets(**kwargs)
            ids.extend(page.get("targetIds", []))
            token = page.get("nextToken")
            if not token:
                break
        targets = []
        for i in range(0, len(ids), BATCH_GET_TARGETS_MAX):
            answer = CODEDEPLOY.batch_get_deployment_targets(
                deploymentId=deployment_id, targetIds=ids[i:i + BATCH_GET_TARGETS_MAX])
            targets.extend(answer.get("deploymentTargets", []))
    except (CODEDEPLOY.exceptions.DeploymentDoesNotExistException,
            CODEDEPLOY.exceptions.InvalidDeploymentIdException) as e:
        raise DeploymentNotFound(str(e)) from e
    instances = []
    for t in targets:
        it = t.get("instanceTarget")
        if not it:
            continue
        instances.append({
            "label": (it.get("instanceLabel") or "").capitalize() or None,
            "events": [{"name": e.get("lifecycleEventName", ""), "status": e.get("status", "Unknown"),
                        "start": _ms(e.get("startTime")), "end": _ms(e.get("endTime"))}
                       for e in it.get("lifecycleEvents", [])],
        })
    error = info.get("errorInformation")
    return {
        "deploymentId": deployment_id,
        "status": info["status"],
        "created": _ms(info.get("createTime")),
        "completed": _ms(info.get("completeTime")),
        "error": {"code": error.get("code", ""), "message": error.get("message", "")} if error else None,
        "rollbackDeploymentId": (info.get("rollbackInfo") or {}).get("rollbackDeploymentId"),
        "terminationWaitStarted": info.get("instanceTerminationWaitTimeStarted", False),
        "targets": instances,
    }


def _span(events):
    s = {"any": False, "begun": False, "all_ok": True, "first": None, "last": None}
    for e in events:
        s["any"] = True
        started = e["status"] not in ("Pending", "Unknown") or e["start"] is not None
        if started and not (e["status"] == "Skipped" and e["start"] is None):
            s["begun"] = True
        if e["start"] is not None:
            s["first"] = e["start"] if s["first"] is None else min(s["first"], e["start"])
        if e["end"] is not None:
            s["last"] = e["end"] if s["last"] is None else max(s["last"], e["end"])
        if e["status"] not in ("Succeeded", "Skipped"):
            s["all_ok"] = False
    if not s["any"]:
        s["all_ok"] = False
    return s


def milestones(view):
    green = [t for t in view["targets"] if t["label"] != "Blue"]
    blue = [t for t in view["targets"] if t["label"] != "Green"]
    install = _span(e for t in green for e in t["events"] if e["name"] in INSTALL_EVENTS)
    reroute = _span([e for t in green for e in t["events"] if e["name"] in ALLOW_TRAFFIC_EVENTS]
                    + [e for t in blue for e in t["events"] if e["name"] in BLOCK_TRAFFIC_EVENTS])
    return {
        "created": view["created"],
        "install_started": install["first"],
        "installed": install["last"] if install["all_ok"] else None,
        "reroute_started": reroute["first"],
        "rerouted": reroute["last"] if reroute["all_ok"] else None,
        "completed": view["completed"] if view["status"] in TERMINAL else None,
        "install_begun": install["begun"], "install_done": install["all_ok"],
        "reroute_begun": reroute["begun"], "reroute_done": reroute["all_ok"],
    }


def phase_of(view, m):
    status = view["status"]
    if status in ("Created", "Queued"):
        return "Queued"
    if status == "Ready":
        return "ReadyWait"
    if status == "Baking":
        return "Terminating"
    if status in TERMINAL:
        return "Done"
    if view["terminationWaitStarted"] or m["reroute_done"]:
        return "Terminating"
    if m["reroute_begun"]:
        return "Rerouting"
    if m["install_done"]:
        return "ReadyWait"
    return "Installing" if m["install_begun"] else "Provisioning"


def predictions(pipeline):
    p = {"Queued": 10, "Provisioning": 240, "install": 90, "ReadyWait": 10, "allow": 180,
         "block": 300, "Terminating": 60, "pace": "OneAtATime"}
    tuning = pipeline.get("tuning")
    if tuning:
        p["allow"] = tuning["predictedAllowTraffic"]["afterSeconds"]
        p["block"] = (tuning.get("predictedBlockTraffic") or {}).get("afterSeconds", 30)
    deployment = pipeline.get("deployment") or {}
    if deployment.get("blueTerminationWaitSeconds") is not None:
        p["Terminating"] = deployment["blueTerminationWaitSeconds"] + 60
    config = (deployment.get("deploymentConfigName") or "").strip()
    p["pace"] = {"CodeDeployDefault.AllAtOnce": "AllAtOnce",
                 "CodeDeployDefault.HalfAtATime": "HalfAtATime"}.get(config, "OneAtATime")
    return p


def phase_seconds(p, phase, green):
    n = max(green, 1)
    batches = {"OneAtATime": n, "HalfAtATime": min(n, 2), "AllAtOnce": 1}[p["pace"]]
    if phase == "Installing":
        return p["install"] * batches
    if phase == "Rerouting":
        return (p["allow"] + p["block"]) * batches
    return None if phase == "Done" else p[phase]


def ledger(view, phase, m, p):
    green = sum(1 for t in view["targets"] if t["label"] == "Green")
    first = "Queued" if phase == "Queued" else "Provisioning"
    starts = [(first, m["created"]), ("Installing", m["install_started"]), ("ReadyWait", m["installed"]),
              ("Rerouting", m["reroute_started"]), ("Terminating", m["rerouted"])]
    rank = PHASES.index(phase)
    rows = [(ph, t) for ph, t in starts if (phase == "Done" or PHASES.index(ph) <= rank) and t is not None]
    out = []
    for i, (ph, start) in enumerate(rows):
        if i + 1 < len(rows):
            end = rows[i + 1][1]
        else:
            end = m["completed"] if phase == "Done" else None
        row = {"phase": ph, "startedAtMs": start, "predictedSeconds": phase_seconds(p, ph, green)}
        if end is not None:
            row["endedAtMs"] = end
        out.append(row)
    return out


def wait_seconds(phase, rows, predicted_for_phase, deadline_ms, now):
    row = next((r for r in reversed(rows) if r["phase"] == phase and "endedAtMs" not in r), None)
    predicted = (row or {}).get("predictedSeconds") or predicted_for_phase
    if row is not None and predicted is not None:
        elapsed = max(now - row["startedAtMs"], 0) // 1000
        raw = predicted - elapsed if predicted - elapsed > 0 else elapsed // OVERDUE_DIVISOR
    elif predicted is not None:
        raw = predicted
    else:
        raw = MIN_WAIT
    until_deadline = max(deadline_ms - now, 0) // 1000
    return min(min(max(raw, MIN_WAIT), MAX_WAIT), max(until_deadline, MIN_WAIT))


def emit_metrics(pipeline, report):
    now = int(time.time() * 1000)
    dims = {"Application": pipeline["application"], "DeploymentGroup": pipeline["deploymentGroup"]}
    docs = []
    for row in report["ledger"]:
        metrics = {}
        if "endedAtMs" in row:
            metrics["PhaseSeconds"] = max(row["endedAtMs"] - row["startedAtMs"], 0) / 1000
        if row.get("predictedSeconds") is not None:
            metrics["PhasePredictedSeconds"] = float(row["predictedSeconds"])
        if metrics:
            docs.append((dict(dims, Phase=row["phase"]), metrics, "Seconds"))
    if report["next"] == "succeeded":
        docs.append((dict(dims, Outcome="deployed"), {"Deployments": 1.0}, "Count"))
    for dimensions, metrics, unit in docs:
        doc = {"_aws": {"Timestamp": now, "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": [list(dimensions)],
            "Metrics": [{"Name": k, "Unit": unit} for k in metrics]}]}}
        doc.update(dimensions)
        doc.update(metrics)
        sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")


def handler(event, context):
    if event.get("action") != "status":
        raise InvalidInput(f"this twin only implements status, not {event.get('action')!r}")
    pipeline = event["pipeline"]
    created = pipeline.get("deployment")
    if not created:
        raise InvalidInput("status needs $.deployment (the create step's CreatedDeployment)")
    deployment_id = created["deploymentId"]
    now = int(time.time() * 1000)
    view = read_deployment(deployment_id)
    if view["created"] is None:
        view["created"] = created["createdAtMs"]
    m = milestones(view)
    phase = phase_of(view, m)
    p = predictions(pipeline)
    rows = ledger(view, phase, m, p)
    report = {"deploymentId": deployment_id, "status": view["status"], "phase": phase, "ledger": rows,
              "waitSeconds": 0, "next": "wait", "deadlineExceeded": False}
    if view["error"]:
        report["error"] = view["error"]
    if view["rollbackDeploymentId"]:
        report["rollbackDeploymentId"] = view["rollbackDeploymentId"]
    validation = pipeline.get("validation") or {}
    validated = bool(validation.get("passed")) and validation.get("deploymentId") == deployment_id
    if view["status"] == "Succeeded":
        report["next"] = "succeeded"
    elif view["status"] in ("Failed", "Stopped"):
        report["next"] = "failed"
    elif now >= created["deadlineMs"] and not m["reroute_begun"] and view["status"] != "Ready":
        CODEDEPLOY.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
        report.update(next="failed", deadlineExceeded=True)
    elif view["status"] == "Ready" and not validated:
        report["next"] = "validate"
    else:
        green = sum(1 for t in view["targets"] if t["label"] == "Green")
        report["waitSeconds"] = (MIN_WAIT if view["status"] == "Ready" else
                                 wait_seconds(phase, rows, phase_seconds(p, phase, green),
                                              created["deadlineMs"], now))
    print(json.dumps({"level": "INFO", "message": "status", "execution": event.get("executionName"),
                      "deployment_id": deployment_id, "status": report["status"], "phase": phase,
                      "next": report["next"], "wait_seconds": report["waitSeconds"]}))
    if view["status"] in TERMINAL:
        emit_metrics(pipeline, report)
    return report
