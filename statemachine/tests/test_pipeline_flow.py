#!/usr/bin/env python3
"""Flow tests of statemachine/pipeline.asl.json on moto's Step Functions interpreter.

moto 5.2.5 really executes ASL (its parser is LocalStack's). These tests render
the definition with scripts/render-statemachine.py, create it in an in-process
moto, and answer every Lambda task from a script (the real handlers are tested
in the Rust crates; here the subject is the definition: routing, ResultPaths,
Retry/Catch, the failure path, ErrorPath/CausePath). A function error is sent the
way Lambda sends it (FunctionError + {"errorType", "errorMessage"}), so Retry
and Catch match on the same error names as on AWS.

Run: .venv/bin/python -m unittest discover -s statemachine/tests -v
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
import unittest
from pathlib import Path
from unittest import mock

import boto3
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/greenlight-pipeline"


def fn_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:greenlight-{name}"


WATCHER, TUNER, VALIDATOR, HANDLER = (
    fn_arn("deployment-watcher"),
    fn_arn("health-check-tuner"),
    fn_arn("traffic-validator"),
    fn_arn("failure-handler"),
)
FUNCTION_NAMES = {WATCHER: "watcher", TUNER: "tuner", VALIDATOR: "validator", HANDLER: "handler"}


def _load_renderer():
    spec = importlib.util.spec_from_file_location("render_statemachine", ROOT / "scripts" / "render-statemachine.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


RENDERER = _load_renderer()

# moto logs every internal path miss (e.g. the IsPresent test on $.validation) as a
# warning with a stack of objects; the assertions below are what matter.
logging.getLogger("moto").setLevel(logging.CRITICAL)


def rendered_definition(busy_attempts: int = 3) -> str:
    text = (ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8")
    return RENDERER.render(
        text,
        {
            "DeploymentWatcherFunctionArn": WATCHER,
            "HealthCheckTunerFunctionArn": TUNER,
            "TrafficValidatorFunctionArn": VALIDATOR,
            "FailureHandlerFunctionArn": HANDLER,
            # Local values: moto really sleeps between retries.
            "BusyRetryIntervalSeconds": 1,
            "BusyRetryMaxAttempts": busy_attempts,
            "BusyRetryMaxDelaySeconds": 1,
        },
    )


PIPELINE_INPUT = {
    "application": "shop",
    "deploymentGroup": "shop-bg",
    "revision": {
        "bucket": "greenlight-artifacts",
        "key": "artifacts/shop/20261123110000-42.zip",
        "version": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
        "label": "20261123110000-42",
    },
    "uploadedAt": "2026-11-23T11:00:00Z",
    "uploadedAtMs": 1795431600000,
    "source": {"kind": "s3", "eventId": "e-1"},
}


class LambdaError(Exception):
    def __init__(self, error_type: str, message: str = "scripted failure"):
        super().__init__(error_type)
        self.error_type = error_type
        self.message = message


def status(next_step: str, wait: int = 0, state: str = "InProgress") -> dict:
    return {
        "deploymentId": "d-ABCDEF123",
        "status": state,
        "phase": "Installing",
        "ledger": [],
        "waitSeconds": wait,
        "next": next_step,
    }


def report(error: str, summary: str) -> dict:
    return {"error": error, "summary": summary}


class Script:
    """Scripted answers per (function, action): a list consumed in order, the last one repeats."""

    def __init__(self, answers: dict[tuple[str, str], list]):
        self.answers = {key: list(value) for key, value in answers.items()}
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, parameters: dict, region: str, state_credentials) -> dict:
        function = FUNCTION_NAMES[parameters["FunctionName"]]
        payload = json.loads(parameters["Payload"])
        action = payload["action"]
        self.calls.append((f"{function}:{action}", payload))
        queue = self.answers.get((function, action))
        if not queue:
            raise AssertionError(f"unexpected call {function}:{action}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, LambdaError):
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": {"errorType": answer.error_type, "errorMessage": answer.message},
            }
        return {"StatusCode": 200, "Payload": answer}

    def actions(self) -> list[str]:
        return [name for name, _ in self.calls]


HAPPY = {
    ("watcher", "admit"): [{"decision": "proceed"}],
    ("tuner", "tune"): [{"snapshots": [], "predictedAllowTraffic": {"beforeSeconds": 330, "afterSeconds": 15}}],
    ("watcher", "create"): [{"deploymentId": "d-ABCDEF123", "createdAtMs": 1, "deadlineMs": 2, "reused": False}],
    ("watcher", "status"): [
        status("wait"),
        status("validate", state="Ready"),
        status("validate", state="Ready"),
        status("succeeded", state="Succeeded"),
    ],
    ("validator", "validate"): [
        {"deploymentId": "d-ABCDEF123", "passed": True, "summary": "all green", "instances": [], "action": "continued"}
    ],
    ("tuner", "restore"): [{"restored": 1}],
    ("handler", "announce"): [{"outcome": "announced", "announced": "deployed", "subject": "greenlight deployed"}],
    ("watcher", "hold"): [{"groups": [{"name": "shop-blue", "suspended": ["Launch"], "desired": 2}]}],
    ("watcher", "release"): [{"resumed": [{"name": "shop-blue", "suspended": ["Launch"], "desired": 2}]}],
}


@mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
class PipelineFlowTest(unittest.TestCase):
    def run_pipeline(self, answers: dict, busy_attempts: int = 3, name: str = "exec-1"):
        script = Script(answers)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="greenlight-pipeline", definition=rendered_definition(busy_attempts), roleArn=ROLE, type="STANDARD"
        )["stateMachineArn"]
        with mock.patch.object(lambda_eval_utils, "_invoke_lambda_function", script):
            execution = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(PIPELINE_INPUT))[
                "executionArn"
            ]
            deadline = time.monotonic() + 60
            while True:
                described = sfn.describe_execution(executionArn=execution)
                if described["status"] != "RUNNING":
                    break
                if time.monotonic() > deadline:
                    self.fail(f"execution still running after 60 s; calls so far: {script.actions()}")
                time.sleep(0.05)
        history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        entered = [
            e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
        ]
        return described, script, entered

    def assert_failed_with(self, described: dict, error: str, cause: str) -> None:
        self.assertEqual(described["status"], "FAILED", described)
        self.assertEqual(described.get("error"), error)
        self.assertEqual(described.get("cause"), cause)

    def test_happy_path_deploys_validates_once_and_restores(self):
        described, script, entered = self.run_pipeline(HAPPY)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertEqual(
            script.actions(),
            [
                "watcher:admit",
                "tuner:tune",
                "watcher:hold",
                "watcher:create",
                "watcher:status",
                "watcher:status",
                "watcher:hold",
                "validator:validate",
                "watcher:status",
                "watcher:status",
                "watcher:release",
                "tuner:restore",
                "handler:announce",
            ],
        )
        self.assertEqual(entered[0], "Admit")
        self.assertEqual(entered[-1], "Deployed")
        self.assertEqual(json.loads(described["output"])["announced"]["announced"], "deployed")
        self.assertIn("WaitBeforeNextLook", entered)
        output = json.loads(described["output"])
        self.assertEqual(output["application"], "shop")
        self.assertEqual(output["admission"], {"decision": "proceed"})
        self.assertTrue(output["validation"]["passed"])
        self.assertEqual(output["status"]["next"], "succeeded")
        self.assertEqual(output["restored"], {"restored": 1})
        self.assertEqual(output["scalingReleased"]["resumed"][0]["name"], "shop-blue")
        self.assertNotIn("error", output)
        self.assertLess(entered.index("HoldScaling"), entered.index("Create"))
        self.assertLess(entered.index("HoldGreenScaling"), entered.index("Validate"))
        self.assertLess(entered.index("ReleaseScaling"), entered.index("Restore"))

    def terminating(self) -> dict:
        row = status("wait")
        row["phase"] = "Terminating"
        return row

    def skipped_answers(self) -> dict:
        answers = dict(HAPPY)
        answers[("watcher", "status")] = [
            status("validate", state="Ready"),
            self.terminating(),
            self.terminating(),
            self.terminating(),
            status("succeeded", state="Succeeded"),
        ]
        answers[("validator", "bake")] = [
            {"deploymentId": "d-ABCDEF123", "verdict": "skipped", "lookedAtMs": 1, "looks": 1, "waitSeconds": 0,
             "summary": "bake SKIPPED by override (S3 tag greenlight-bake=skip on s3://b/k@v)"}
        ]
        answers[("handler", "announceBakeSkipped")] = [
            {"outcome": "announced", "announced": "bakeSkipped", "subject": "greenlight: bake SKIPPED"}
        ]
        return answers

    def test_a_skipped_bake_is_announced_once_then_the_termination_wait_runs_out(self):
        described, script, entered = self.run_pipeline(self.skipped_answers(), name="exec-skip")
        self.assertEqual(described["status"], "SUCCEEDED", described)
        actions = script.actions()
        # One look (it skipped), one announcement right after it, then only
        # the status loop: no second look, no early end.
        self.assertEqual(actions.count("validator:bake"), 1, actions)
        self.assertEqual(actions.count("handler:announceBakeSkipped"), 1, actions)
        self.assertEqual(actions.index("handler:announceBakeSkipped"), actions.index("validator:bake") + 1)
        self.assertEqual(actions[-4:], ["watcher:status", "watcher:release", "tuner:restore", "handler:announce"])
        output = json.loads(described["output"])
        self.assertEqual(output["bake"]["verdict"], "skipped")
        self.assertIn("S3 tag greenlight-bake=skip", output["bake"]["summary"])
        self.assertEqual(output["bakeSkipAnnounced"]["announced"], "bakeSkipped")
        self.assertNotIn("WaitForBake", entered)

    def test_a_skip_that_cannot_be_announced_takes_the_failure_path(self):
        answers = self.skipped_answers()
        answers[("handler", "announceBakeSkipped")] = [LambdaError("InvalidInput", "no bakeSkip")]
        answers[("handler", "handle")] = [report("TaskFailed", "AnnounceBakeSkipped failed; rolled back to blue.")]
        described, script, _ = self.run_pipeline(answers, name="exec-skip-silent")
        self.assert_failed_with(described, "TaskFailed", "AnnounceBakeSkipped failed; rolled back to blue.")
        self.assertEqual(script.actions()[-2:], ["handler:announceBakeSkipped", "handler:handle"])

    def test_a_failed_hold_goes_to_the_failure_handler_before_anything_is_created(self):
        answers = dict(HAPPY)
        answers[("watcher", "hold")] = [LambdaError("AwsError", "SuspendProcesses denied")]
        answers[("handler", "handle")] = [report("TaskFailed", "HoldScaling failed: SuspendProcesses denied.")]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(script.actions(), ["watcher:admit", "tuner:tune", "watcher:hold", "handler:handle"])
        self.assert_failed_with(described, "TaskFailed", "HoldScaling failed: SuspendProcesses denied.")

    def test_every_task_gets_action_execution_name_and_the_whole_state(self):
        _, script, _ = self.run_pipeline(HAPPY, name="exec-shape")
        for name, payload in script.calls:
            # Validate also gets $$.State.RetryCount: a retry must know an
            # earlier attempt may have continued the deployment.
            extra = {"retryCount"} if name == "validator:validate" else set()
            self.assertEqual(set(payload), {"action", "executionName", "pipeline"} | extra, name)
            self.assertEqual(payload["executionName"], "exec-shape")
            self.assertEqual(payload["pipeline"]["revision"], PIPELINE_INPUT["revision"])
        by_name = dict(script.calls)
        self.assertIn("tuning", by_name["watcher:create"]["pipeline"])
        self.assertIn("deployment", by_name["validator:validate"]["pipeline"])
        self.assertIn("scaling", by_name["validator:validate"]["pipeline"])
        self.assertEqual(by_name["tuner:restore"]["pipeline"]["status"]["next"], "succeeded")

    def test_superseded_ends_without_deploying_and_names_the_newer_execution(self):
        answers = {
            ("watcher", "admit"): [{"decision": "superseded", "byExecution": "exec-2", "byKey": "artifacts/shop/b.zip"}],
            ("handler", "announce"): [{"outcome": "announced", "announced": "superseded", "subject": "s"}],
        }
        described, script, entered = self.run_pipeline(answers)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertEqual(script.actions(), ["watcher:admit", "handler:announce"])
        self.assertEqual(entered[-1], "Superseded")
        self.assertEqual(json.loads(described["output"])["admission"]["byExecution"], "exec-2")
        announce = dict(script.calls)["handler:announce"]
        self.assertEqual(announce["pipeline"]["admission"]["decision"], "superseded")

    def test_a_notification_that_cannot_be_sent_never_fails_a_deployed_or_superseded_upload(self):
        answers = dict(HAPPY)
        answers[("handler", "announce")] = [LambdaError("AwsError", "Publish denied")]
        described, script, entered = self.run_pipeline(answers)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertEqual(entered[-1], "Deployed")
        self.assertNotIn("handler:handle", script.actions())
        self.assertEqual(json.loads(described["output"])["announceError"]["Error"], "AwsError")
        answers = {
            ("watcher", "admit"): [{"decision": "superseded", "byExecution": "exec-2", "byKey": "artifacts/shop/b.zip"}],
            ("handler", "announce"): [LambdaError("InvalidInput", "bad")],
        }
        described, script, entered = self.run_pipeline(answers, name="exec-superseded-silent")
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertEqual(entered[-1], "Superseded")
        self.assertEqual(script.actions(), ["watcher:admit", "handler:announce"])

    def test_group_busy_waits_its_turn_on_admit_and_create(self):
        answers = dict(HAPPY)
        answers[("watcher", "admit")] = [LambdaError("GroupBusy"), LambdaError("GroupBusy"), {"decision": "proceed"}]
        answers[("watcher", "create")] = [LambdaError("GroupBusy"), HAPPY[("watcher", "create")][0]]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertEqual(script.actions().count("watcher:admit"), 3)
        self.assertEqual(script.actions().count("watcher:create"), 2)

    def test_group_busy_budget_exhausted_goes_to_the_failure_handler(self):
        answers = {
            ("watcher", "admit"): [LambdaError("GroupBusy", "group shop-bg busy with d-OTHER")],
            ("handler", "handle"): [report("GroupBusyTimeout", "shop/shop-bg stayed busy; nothing deployed; retry later.")],
        }
        described, script, entered = self.run_pipeline(answers, busy_attempts=2)
        self.assertEqual(script.actions(), ["watcher:admit"] * 3 + ["handler:handle"])
        handled = script.calls[-1][1]["pipeline"]
        self.assertEqual(handled["error"]["Error"], "GroupBusy")
        self.assertIn("d-OTHER", handled["error"]["Cause"])
        self.assert_failed_with(described, "GroupBusyTimeout", "shop/shop-bg stayed busy; nothing deployed; retry later.")
        self.assertEqual(entered[-1], "Failed")

    def test_lambda_throttling_is_retried(self):
        answers = dict(HAPPY)
        answers[("tuner", "tune")] = [LambdaError("Lambda.TooManyRequestsException"), HAPPY[("tuner", "tune")][0]]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertEqual(script.actions().count("tuner:tune"), 2)

    def test_aws_transient_is_retried_with_backoff_on_idempotent_tasks(self):
        answers = dict(HAPPY)
        answers[("tuner", "tune")] = [LambdaError("AwsTransient", "DescribeTargetGroups throttled"), HAPPY[("tuner", "tune")][0]]
        answers[("tuner", "restore")] = [LambdaError("AwsTransient", "ModifyTargetGroup 503"), HAPPY[("tuner", "restore")][0]]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertEqual(script.actions().count("tuner:tune"), 2)
        self.assertEqual(script.actions().count("tuner:restore"), 2)
        self.assertNotIn("handler:handle", script.actions())

    def test_a_timed_out_create_or_status_is_retried(self):
        # Sandbox.Timedout: the watcher's Lambda ran out of time. Create finds
        # the deployment it may already have made by its description; Status
        # only reads (its deadline StopDeployment may repeat): both run again.
        answers = dict(HAPPY)
        answers[("watcher", "create")] = [LambdaError("Sandbox.Timedout", "Task timed out after 60.00 seconds"), HAPPY[("watcher", "create")][0]]
        answers[("watcher", "status")] = [LambdaError("Sandbox.Timedout", "Task timed out after 60.00 seconds")] + HAPPY[("watcher", "status")]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertEqual(script.actions().count("watcher:create"), 2)
        self.assertNotIn("handler:handle", script.actions())

    def test_a_timeout_reported_as_lambda_unknown_is_retried_too(self):
        # AWS may report a function timeout or out-of-memory kill as
        # Lambda.Unknown ("Handle Lambda service exceptions"): same retry.
        answers = dict(HAPPY)
        answers[("watcher", "status")] = [LambdaError("Lambda.Unknown", "")] + HAPPY[("watcher", "status")]
        answers[("validator", "validate")] = [LambdaError("Lambda.Unknown", ""), HAPPY[("validator", "validate")][0]]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertEqual(script.actions().count("validator:validate"), 2)
        self.assertNotIn("handler:handle", script.actions())

    def test_a_timed_out_validate_is_retried_and_the_retry_knows_it(self):
        # Validate is safe to run again: the retry gets retryCount 1 and, if an
        # earlier attempt's ContinueDeployment took effect, reports it instead
        # of gating again (probe::validate_entry).
        answers = dict(HAPPY)
        answers[("validator", "validate")] = [
            LambdaError("Sandbox.Timedout", "Task timed out after 300.00 seconds"),
            HAPPY[("validator", "validate")][0],
        ]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        validates = [payload for name, payload in script.calls if name == "validator:validate"]
        self.assertEqual([p["retryCount"] for p in validates], [0, 1])
        self.assertNotIn("handler:handle", script.actions())

    def test_aws_transient_on_validate_is_retried_with_the_retry_count(self):
        # Issue 9 defect 2: a Validate read throttled past the SDK's retries
        # used to end the execution and leave a healthy deployment in Ready.
        answers = dict(HAPPY)
        answers[("validator", "validate")] = [
            LambdaError("AwsTransient", "ListDeploymentTargets throttled"),
            LambdaError("AwsTransient", "ContinueDeployment 503"),
            {"deploymentId": "d-ABCDEF123", "passed": True, "summary": "continued earlier", "instances": [], "action": "continuedEarlier"},
        ]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        validates = [payload for name, payload in script.calls if name == "validator:validate"]
        self.assertEqual([p["retryCount"] for p in validates], [0, 1, 2])
        self.assertNotIn("handler:handle", script.actions())
        self.assertEqual(json.loads(described["output"])["validation"]["action"], "continuedEarlier")

    def test_a_validate_verdict_is_not_retried(self):
        # Only transient names are retried: the validator's own errors (here,
        # the deployment left Ready on a first run) go to the failure handler.
        answers = dict(HAPPY)
        answers[("validator", "validate")] = [LambdaError("DeploymentNotReady", "d-ABCDEF123 is Stopped")]
        answers[("handler", "handle")] = [report("TaskFailed", "Validate found the deployment stopped.")]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(script.actions().count("validator:validate"), 1)
        self.assertEqual(script.calls[-1][1]["pipeline"]["error"]["Error"], "DeploymentNotReady")
        self.assert_failed_with(described, "TaskFailed", "Validate found the deployment stopped.")

    def test_own_errors_are_not_retried_but_caught(self):
        answers = {
            ("watcher", "admit"): [{"decision": "proceed"}],
            ("tuner", "tune"): [LambdaError("TargetGroupNotFound", "no target group for shop-bg")],
            ("handler", "handle"): [report("TaskFailed", "Tune failed: no target group for shop-bg.")],
        }
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(script.actions(), ["watcher:admit", "tuner:tune", "handler:handle"])
        self.assertEqual(script.calls[-1][1]["pipeline"]["error"]["Error"], "TargetGroupNotFound")
        self.assert_failed_with(described, "TaskFailed", "Tune failed: no target group for shop-bg.")

    def test_validation_failure_goes_to_the_failure_handler(self):
        answers = dict(HAPPY)
        answers[("watcher", "status")] = [status("validate", state="Ready")]
        answers[("validator", "validate")] = [
            {"deploymentId": "d-ABCDEF123", "passed": False, "summary": "i-1 answered 500", "instances": [], "action": "stopped"}
        ]
        answers[("handler", "handle")] = [report("ValidationFailed", "Green i-1 answered 500; deployment stopped and rolled back.")]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(script.actions()[-2:], ["validator:validate", "handler:handle"])
        self.assertNotIn("error", script.calls[-1][1]["pipeline"])
        self.assertFalse(script.calls[-1][1]["pipeline"]["validation"]["passed"])
        self.assert_failed_with(described, "ValidationFailed", "Green i-1 answered 500; deployment stopped and rolled back.")

    def test_failed_deployment_goes_to_the_failure_handler(self):
        answers = dict(HAPPY)
        answers[("watcher", "status")] = [status("wait"), status("failed", state="Failed")]
        answers[("handler", "handle")] = [report("DeploymentFailed", "BeforeInstall failed on i-2; green ASG removed.")]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(script.actions()[-1], "handler:handle")
        self.assertNotIn("tuner:restore", script.actions())
        self.assert_failed_with(described, "DeploymentFailed", "BeforeInstall failed on i-2; green ASG removed.")

    def test_restore_failure_still_goes_through_the_failure_handler(self):
        answers = dict(HAPPY)
        answers[("tuner", "restore")] = [LambdaError("RestoreFailed", "ModifyTargetGroup denied")]
        answers[("handler", "handle")] = [report("TaskFailed", "Restore failed: ModifyTargetGroup denied.")]
        described, script, _ = self.run_pipeline(answers)
        self.assertEqual(script.actions()[-2:], ["tuner:restore", "handler:handle"])
        self.assert_failed_with(described, "TaskFailed", "Restore failed: ModifyTargetGroup denied.")

    def test_unknown_next_step_is_a_contract_mismatch_on_the_failure_path(self):
        answers = dict(HAPPY)
        answers[("watcher", "status")] = [status("dance")]
        answers[("handler", "handle")] = [report("TaskFailed", "Contract mismatch.")]
        described, script, entered = self.run_pipeline(answers)
        self.assertIn("ContractMismatch", entered)
        self.assertEqual(script.calls[-1][1]["pipeline"]["error"]["Error"], "ContractMismatch")
        self.assert_failed_with(described, "TaskFailed", "Contract mismatch.")

    def test_failure_handler_failing_is_reported_loudly(self):
        answers = {
            ("watcher", "admit"): [LambdaError("AccessDenied", "codedeploy:GetDeploymentGroup denied")],
            ("handler", "handle"): [LambdaError("PublishFailed", "sns:Publish denied")],
        }
        described, script, entered = self.run_pipeline(answers)
        self.assertEqual(entered[-1], "FailureHandlerFailed")
        self.assertEqual(described["status"], "FAILED")
        self.assertEqual(described.get("error"), "FailureHandlerFailed")
        self.assertIn("PublishFailed", described.get("cause", ""))
        self.assertIn("sns:Publish denied", described.get("cause", ""))


if __name__ == "__main__":
    unittest.main()
