"""End-to-end test of the local cloud as a service, driven only from outside
greenlight's Rust code: the `greenlight-local` binary (up / status / revisions /
down) and the pinned AWS CLI from the project venv.

    scripts/test.sh service      # or, by hand:
    cargo test --workspace --no-run && .venv/bin/python -m unittest tests/service_cli_test.py -v

The binary comes from $GREENLIGHT_LOCAL_BIN (default target/debug/greenlight-local);
this test builds nothing. So that it never touches a local cloud a developer
keeps running in the project, the service runs in a throw-away project folder
(template.yaml, statemachine/ and .venv linked from the repository): its state
file is <tmp>/.local-cloud/service/state.json. Every wait is bounded and all
traffic stays on 127.0.0.0/8.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.abspath(
    os.environ.get("GREENLIGHT_LOCAL_BIN", os.path.join(ROOT, "target", "debug", "greenlight-local"))
)
AWS = os.path.join(ROOT, ".venv", "bin", "aws")
TIME_SCALE = "0.1"
LABEL = "svc-test-v2"

UP_TIMEOUT = 300  # moto start-up + provisioning + healthy blue fleet on a busy 2-core box
DEPLOYMENT_APPEARS_TIMEOUT = 90
DEPLOYMENT_SUCCEEDS_TIMEOUT = 300
COMMAND_TIMEOUT = 60

# The seed's health check, which greenlight must put back after the deployment.
# The functions greenlight's template defines, hosted in-process by the local cloud
# (the pipeline trigger runs the deploy trigger's code for CodePipeline jobs).
FUNCTION_NAMES = sorted([
    "greenlight-deploy-trigger",
    "greenlight-pipeline-trigger",
    "greenlight-health-check-tuner",
    "greenlight-traffic-validator",
    "greenlight-deployment-watcher",
    "greenlight-failure-handler",
])

SEED_SETTINGS = {
    "HealthCheckIntervalSeconds": 30,
    "HealthCheckTimeoutSeconds": 5,
    "HealthyThresholdCount": 10,
    "UnhealthyThresholdCount": 2,
}


def loopback_port(url):
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "http" or not parsed.hostname or not parsed.hostname.startswith("127."):
        raise AssertionError(f"{url} is not a loopback http URL")
    return parsed.hostname, parsed.port


def refuses(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect((host, port))
        except (ConnectionRefusedError, socket.timeout, OSError):
            return True
    return False


def pid_alive(pid):
    """A live, non-zombie process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


class ServiceCliTest(unittest.TestCase):
    """Ordered steps (unittest runs test methods in name order) on one service."""

    project = None
    state = None
    uploaded_at = None

    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            # A missing binary is a failure, not a skip: this test is what proves the service works.
            raise RuntimeError(
                f"{BIN} not found: run `cargo test --workspace --no-run` (builds it) "
                "or set GREENLIGHT_LOCAL_BIN"
            )
        if not os.access(AWS, os.X_OK):
            raise RuntimeError(f"{AWS} not found: run scripts/test.sh tools (installs the pinned awscli)")
        cls.project = tempfile.mkdtemp(prefix="greenlight-service-test.")
        for name in ("template.yaml", "statemachine", ".venv"):
            os.symlink(os.path.join(ROOT, name), os.path.join(cls.project, name))
        cls.state_file = os.path.join(cls.project, ".local-cloud", "service", "state.json")
        cls.revisions = os.path.join(cls.project, "revisions")

    @classmethod
    def tearDownClass(cls):
        if cls.project is None:
            return
        # Safety net when a step failed before `down`.
        if os.path.exists(cls.state_file):
            subprocess.run([BIN, "down"], cwd=cls.project, timeout=120, check=False,
                           stdin=subprocess.DEVNULL, capture_output=True)
        if cls.state and pid_alive(cls.state["pid"]):
            os.killpg(cls.state["pid"], 9)
        shutil.rmtree(cls.project, ignore_errors=True)

    # ------------------------------------------------------------ helpers

    def local(self, *args, timeout=COMMAND_TIMEOUT):
        return subprocess.run([BIN, *args], cwd=self.project, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)

    def aws(self, *args):
        """The AWS CLI against the service's endpoint, with arbitrary credentials."""
        p = self.aws_run(*args)
        self.assertEqual(p.returncode, 0, f"aws {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
        return json.loads(p.stdout) if p.stdout.strip().startswith(("{", "[")) else p.stdout

    def aws_run(self, *args):
        """The AWS CLI run, whatever its exit code (a CompletedProcess)."""
        state = type(self).state
        self.assertIsNotNone(state, "the service did not start")
        loopback_port(state["endpointUrl"])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.project,
            # Any credentials work: deliberately not the ones status suggests.
            "AWS_ACCESS_KEY_ID": "AKIDANYTHING",
            "AWS_SECRET_ACCESS_KEY": "any-secret",
            "AWS_DEFAULT_REGION": state["region"],
            "AWS_CONFIG_FILE": os.path.join(self.project, "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.project, "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "*",
        }
        cmd = [AWS, "--endpoint-url", state["endpointUrl"], "--output", "json", *args]
        return subprocess.run(cmd, env=env, timeout=COMMAND_TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)

    def wait_for(self, what, timeout, probe, every=2.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            done, last = probe()
            if done:
                return last
            time.sleep(every)
        self.fail(f"{what}: not within {timeout}s (last seen: {last})")

    # ------------------------------------------------------------ steps

    def test_1_up_is_idempotent_and_status_reports_everything(self):
        p = self.local("status")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("not running", p.stdout)

        t0 = time.monotonic()
        p = self.local("up", "--time-scale", TIME_SCALE, timeout=UP_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        print(f"\n  up: ready in {time.monotonic() - t0:.1f}s")
        with open(self.state_file) as f:
            state = json.load(f)
        type(self).state = state
        self.assertTrue(pid_alive(state["pid"]))
        self.assertEqual(state["region"], "us-east-1")
        loopback_port(state["endpointUrl"])
        loopback_port(state["listenerUrl"])
        for key in ("accessKeyId", "secretAccessKey"):
            self.assertTrue(state["credentials"][key])
        r = state["resources"]
        self.assertEqual(r["bucket"], "greenlight-demo-artifacts")
        self.assertEqual(r["artifactPrefix"], "artifacts/")
        self.assertEqual(r["application"], "greenlight-demo")
        self.assertEqual(r["deploymentGroup"], "greenlight-demo-group")
        self.assertEqual(r["blueAsg"], "greenlight-demo-blue")
        self.assertTrue(r["targetGroupArn"].startswith("arn:aws:elasticloadbalancing:us-east-1:"))
        self.assertTrue(r["stateMachineArn"].startswith("arn:aws:states:us-east-1:"))
        self.assertTrue(r["topicArn"].startswith("arn:aws:sns:us-east-1:"))
        self.assertTrue(os.path.exists(state["logPath"]))

        # A second `up` reports the running service and starts nothing.
        p = self.local("up", "--time-scale", TIME_SCALE, timeout=UP_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("already running", p.stdout)
        self.assertIn(f"pid {state['pid']}", p.stdout)
        with open(self.state_file) as f:
            self.assertEqual(json.load(f)["pid"], state["pid"])

        p = self.local("status")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for needle in (state["endpointUrl"], state["listenerUrl"], "us-east-1",
                       r["targetGroupArn"], r["stateMachineArn"], r["topicArn"], r["blueAsg"]):
            self.assertIn(needle, p.stdout)
        p = self.local("status", "--json")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(json.loads(p.stdout)["running"])

    def test_1b_lambda_api_shows_the_hosted_functions(self):
        state = type(self).state
        self.assertIsNotNone(state, "the service did not start")
        r = state["resources"]
        functions = self.aws("lambda", "list-functions")["Functions"]
        self.assertEqual(sorted(f["FunctionName"] for f in functions), FUNCTION_NAMES)
        for f in functions:
            self.assertEqual(f["FunctionArn"],
                             f"arn:aws:lambda:us-east-1:123456789012:function:{f['FunctionName']}")
            self.assertEqual((f["Runtime"], f["Handler"], f["Architectures"], f["State"]),
                             ("provided.al2023", "bootstrap", ["arm64"], "Active"))
            self.assertIn("in-process by greenlight's local cloud", f["Description"])
            self.assertNotIn("Environment", f)
        # The CLI pages with MaxItems/NextMarker (--page-size) and gets the same six.
        paged = self.aws("lambda", "list-functions", "--page-size", "2")["Functions"]
        self.assertEqual(sorted(f["FunctionName"] for f in paged), FUNCTION_NAMES)

        # The functions the state machine calls are among them.
        definition = self.aws("stepfunctions", "describe-state-machine", "--state-machine-arn",
                              r["stateMachineArn"])["definition"]
        called = set(re.findall(r"arn:aws:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+",
                                definition))
        self.assertTrue(called, definition)
        self.assertLessEqual(called, {f["FunctionArn"] for f in functions})

        got = self.aws("lambda", "get-function", "--function-name", "greenlight-deployment-watcher")
        self.assertEqual(got["Configuration"]["FunctionArn"],
                         "arn:aws:lambda:us-east-1:123456789012:function:greenlight-deployment-watcher")
        self.assertEqual(got["Code"]["RepositoryType"], "S3")
        by_arn = self.aws("lambda", "get-function-configuration", "--function-name",
                          got["Configuration"]["FunctionArn"])
        self.assertEqual(by_arn, got["Configuration"])

        p = self.aws_run("lambda", "get-function", "--function-name", "greenlight-no-such-function")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("ResourceNotFoundException", p.stderr)
        self.assertIn("Function not found: arn:aws:lambda:us-east-1:123456789012:function:"
                      "greenlight-no-such-function", p.stderr)

        # What the local cloud does not emulate says so.
        p = self.aws_run("lambda", "delete-function", "--function-name", "greenlight-failure-handler")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("DeleteFunction is not emulated", p.stderr)
        self.assertIn("greenlight-failure-handler",
                      [f["FunctionName"] for f in self.aws("lambda", "list-functions")["Functions"]])

    def test_2_upload_with_aws_cli_deploys_to_succeeded(self):
        state = type(self).state
        self.assertIsNotNone(state, "the service did not start")
        r = state["resources"]
        before = self.aws("deploy", "list-deployments", "--application-name", r["application"],
                          "--deployment-group-name", r["deploymentGroup"])["deployments"]

        p = self.local("revisions", "--out", self.revisions, "--label", LABEL)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        zip_path = os.path.join(self.revisions, f"{LABEL}-good.zip")
        self.assertTrue(os.path.exists(zip_path), p.stdout)
        key = f"{r['artifactPrefix']}{r['application']}/{LABEL}-good.zip"
        self.aws("s3", "cp", zip_path, f"s3://{r['bucket']}/{key}")
        listed = self.aws("s3api", "list-objects-v2", "--bucket", r["bucket"], "--prefix", key)
        self.assertEqual([o["Key"] for o in listed.get("Contents", [])], [key])

        def new_deployment():
            ids = self.aws("deploy", "list-deployments", "--application-name", r["application"],
                           "--deployment-group-name", r["deploymentGroup"])["deployments"]
            fresh = [d for d in ids if d not in before]
            return bool(fresh), fresh

        fresh = self.wait_for("a CodeDeploy deployment for the upload", DEPLOYMENT_APPEARS_TIMEOUT,
                              new_deployment)
        self.assertEqual(len(fresh), 1, fresh)
        deployment_id = fresh[0]
        type(self).deployment_id = deployment_id

        seen = []

        def succeeded():
            info = self.aws("deploy", "get-deployment", "--deployment-id", deployment_id)["deploymentInfo"]
            status = info["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
                print(f"  {deployment_id}: {status}")
            if status in ("Failed", "Stopped"):
                self.fail(f"deployment {deployment_id} ended {status}: {info.get('errorInformation')}")
            return status == "Succeeded", info

        info = self.wait_for(f"deployment {deployment_id} Succeeded", DEPLOYMENT_SUCCEEDS_TIMEOUT,
                             succeeded, every=3.0)
        self.assertEqual(info["revision"]["s3Location"]["key"], key)
        self.assertEqual(info["deploymentStyle"]["deploymentType"], "BLUE_GREEN")

        # The state machine execution that drove it ends SUCCEEDED too (it restores the
        # target group after CodeDeploy reports success).
        def execution_done():
            execs = self.aws("stepfunctions", "list-executions", "--state-machine-arn",
                             r["stateMachineArn"])["executions"]
            statuses = [e["status"] for e in execs]
            return bool(execs) and "RUNNING" not in statuses, statuses

        statuses = self.wait_for("the pipeline execution to finish", 120, execution_done)
        self.assertEqual(statuses, ["SUCCEEDED"])

    def test_3_target_group_serves_green_healthy_with_seed_settings(self):
        state = type(self).state
        deployment_id = getattr(type(self), "deployment_id", None)
        self.assertIsNotNone(deployment_id, "no deployment to check")
        r = state["resources"]

        target_ids = self.aws("deploy", "list-deployment-targets", "--deployment-id",
                              deployment_id)["targetIds"]
        targets = self.aws("deploy", "batch-get-deployment-targets", "--deployment-id", deployment_id,
                           "--target-ids", *target_ids)["deploymentTargets"]
        green = sorted(t["instanceTarget"]["targetId"] for t in targets
                       if t["instanceTarget"].get("instanceLabel", "").lower() == "green")
        blue = sorted(t["instanceTarget"]["targetId"] for t in targets
                      if t["instanceTarget"].get("instanceLabel", "").lower() == "blue")
        self.assertTrue(green, targets)
        self.assertEqual(blue, sorted(r["blueInstances"]))

        health = self.aws("elbv2", "describe-target-health", "--target-group-arn",
                          r["targetGroupArn"])["TargetHealthDescriptions"]
        registered = sorted(h["Target"]["Id"] for h in health)
        self.assertEqual(registered, green, health)
        self.assertEqual({h["TargetHealth"]["State"] for h in health}, {"healthy"}, health)

        groups = self.aws("elbv2", "describe-target-groups", "--target-group-arns",
                          r["targetGroupArn"])["TargetGroups"]
        self.assertEqual(len(groups), 1)
        settings = {k: groups[0][k] for k in SEED_SETTINGS}
        self.assertEqual(settings, SEED_SETTINGS)
        tags = self.aws("elbv2", "describe-tags", "--resource-arns",
                        r["targetGroupArn"])["TagDescriptions"][0]["Tags"]
        self.assertNotIn("greenlight:snapshot", [t["Key"] for t in tags])

        # Through the load balancer's listener, the app now serves the new version.
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                state["listenerUrl"] + "/version", timeout=10) as resp:
            self.assertEqual(resp.read().decode().strip(), f"{LABEL}-good")

    def test_4_down_leaves_nothing_running(self):
        state = type(self).state
        self.assertIsNotNone(state, "the service did not start")
        p = self.local("down", timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        print("\n  " + p.stdout.strip().replace("\n", "\n  "))
        self.assertFalse(pid_alive(state["pid"]), f"pid {state['pid']} still runs")
        self.assertFalse(os.path.exists(self.state_file))
        for url in (state["endpointUrl"], state["listenerUrl"]):
            host, port = loopback_port(url)
            self.assertTrue(refuses(host, port), f"{url} still accepts connections")
        if state["ports"].get("moto"):
            self.assertTrue(refuses("127.0.0.1", state["ports"]["moto"]), "moto still listens")
        for ip in state["ports"]["instanceAddresses"]:
            self.assertTrue(refuses(ip, state["ports"]["app"]), f"instance {ip} still listens")
        # No process of the service's group is left (moto included).
        left = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.getpgid(int(entry)) == state["pid"] and pid_alive(int(entry)):
                        left.append(int(entry))
                except ProcessLookupError:
                    pass
        self.assertEqual(left, [])

        p = self.local("status")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("not running", p.stdout)


if __name__ == "__main__":
    unittest.main()
