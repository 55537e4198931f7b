#!/usr/bin/env python3
"""A local Lambda Runtime API and the Lambda-weight benchmark (issue 12, item 2).

    .venv/bin/python bench/lambda_harness.py --out RESULTS.json \\
        --rust LABEL=FUNCTION:PATH/TO/bootstrap ... --python LABEL=FUNCTION:PATH/TO/python3.12 ...

FUNCTION is `deployment-watcher` (action `status`) or `health-check-tuner` (action `tune`). A
`--rust` run starts the bootstrap as Lambda's provided.al2023 runtime does; a `--python` run
starts `python -m awslambdaric <twin>.handler` from bench/twins (the twin of that function's
action), as the managed python3.12 runtime starts its runtime interface client.

What it does, all on 127.0.0.1:
1. Starts the local cloud as a service (`greenlight-local up --rate-limits off`) in a throw-away
   project folder, uploads a good revision and waits until greenlight's own pipeline has
   deployed it (deployment Succeeded, execution ended): the watcher's `status` then reads a real
   finished blue/green deployment (its targets and lifecycle events), the tuner's `tune` the
   demo deployment group and its target group.
2. Per run, serves the Runtime API (GET /2018-06-01/runtime/invocation/next, POST
   .../invocation/{id}/response, .../invocation/{id}/error, /2018-06-01/runtime/init/error) on a
   fresh port, starts the function with the environment template.yaml gives it plus Lambda's own
   variables (AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_*, AWS_REGION, credentials) and
   AWS_ENDPOINT_URL = the local cloud, and feeds it the event from events/*.json with the local
   names and the real deployment id substituted.
3. Measures: init (process start -> first GET /next), first invoke (event handed out by /next ->
   its /response), warm p50/p99 over N more invokes, the CPU the process used per warm invoke,
   peak RSS (VmHWM of the process after the warm invokes), and the zip Lambda would receive.
   Cold starts are repeated (--cold-starts, runs interleaved so machine load hits every run
   alike); init and first invoke are the median over them.
4. Checks that every run of the same function answered the same (the twin does the same work).

Before each cold start of `tune` the target group is put back to its seed settings without the
snapshot tag, so every first invoke does the full tune (tag + both writes) and the warm ones the
read-only path (tag recorded, settings already tuned), for Rust and Python alike.

Rate limits are off so a warm loop of N invokes measures the functions, not the emulated
throttling (CodeDeploy's harsh 5/s would throttle both sides alike). Everything is bounded.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
TWINS = ROOT / "bench" / "twins"
REGION = "us-east-1"
ACCOUNT = "123456789012"
SEED_LABEL = "bench-weight"
UP_TIMEOUT = 300
DEPLOY_TIMEOUT = 300
INIT_TIMEOUT = 30
INVOKE_TIMEOUT = 30
FUNCTIONS = {
    # function -> (event file, twin module, template.yaml environment)
    "deployment-watcher": ("task-status.json", "deployment_watcher", {
        "DEPLOYMENT_CONFIG_NAME": "CodeDeployDefault.OneAtATime",
        "DEPLOYMENT_TIMEOUT_SECONDS": "3600",
        "POST_REROUTE_TIMEOUT_SECONDS": "10800",
        "MIN_WAIT_SECONDS": "5",
        "MAX_WAIT_SECONDS": "60",
        "IGNORE_APPLICATION_STOP_FAILURES": "false",
    }),
    "health-check-tuner": ("task-tune.json", "health_check_tuner", {
        "HEALTH_CHECK_INTERVAL_SECONDS": "5",
        "HEALTH_CHECK_TIMEOUT_SECONDS": "2",
        "HEALTHY_THRESHOLD": "2",
        "UNHEALTHY_THRESHOLD": "2",
        "DEREGISTRATION_DELAY_SECONDS": "30",
    }),
}
SNAPSHOT_TAG_KEY = "greenlight:snapshot"
DEREGISTRATION = "deregistration_delay.timeout_seconds"


def log(msg: str) -> None:
    print(f"lambda-harness: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- Runtime API


class RuntimeApi:
    """Lambda's Runtime API (2018-06-01) for one execution environment, one invoke at a time."""

    PREFIX = "/2018-06-01/runtime"

    def __init__(self, function_name: str):
        self.function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.pending: queue.Queue = queue.Queue()
        self.first_next: float | None = None
        self.first_next_event = threading.Event()
        self.init_error: str | None = None
        self.handed_out: dict[str, float] = {}
        self.results: dict[str, tuple[float, bool, bytes]] = {}
        self.done = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                # Each answer goes out as one write with Nagle off: a header write followed by a
                # body write would meet the client's delayed ACK and add ~40 ms to every call.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _reply(self, status: int, body: bytes = b"{}", headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self._headers_buffer.append(b"\r\n" + body)
                try:
                    self.flush_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the runtime was stopped

            def do_GET(self):
                if self.path != f"{api.PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorMessage":"unknown path"}')
                if api.first_next is None:
                    api.first_next = time.monotonic()
                    api.first_next_event.set()
                item = api.pending.get()  # blocks until the harness invokes (or stops)
                if item is None:
                    # Shutting down: leave the runtime waiting, as Lambda freezes it.
                    time.sleep(3600)
                    return
                request_id, body = item
                deadline_ms = int((time.time() + 60) * 1000)
                self._reply(200, body, {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id":
                        f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                })
                api.handed_out[request_id] = time.monotonic()

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                now = time.monotonic()
                path = self.path
                if path == f"{api.PREFIX}/init/error":
                    api.init_error = body.decode(errors="replace")
                    api.first_next_event.set()
                    return self._reply(202)
                prefix = f"{api.PREFIX}/invocation/"
                if path.startswith(prefix) and path.endswith(("/response", "/error")):
                    request_id, kind = path[len(prefix):].rsplit("/", 1)
                    with api.done:
                        api.results[request_id] = (now, kind == "error", body)
                        api.done.notify_all()
                    return self._reply(202)
                return self._reply(404, b'{"errorMessage":"unknown path"}')

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event: dict) -> tuple[float, bool, dict]:
        """Hands `event` to the runtime; returns (seconds handed-out -> response, error?, body)."""
        request_id = str(uuid.uuid4())
        self.pending.put((request_id, json.dumps(event).encode()))
        deadline = time.monotonic() + INVOKE_TIMEOUT
        with self.done:
            while request_id not in self.results:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer to invoke {request_id} within {INVOKE_TIMEOUT}s")
                self.done.wait(left)
        answered, is_error, body = self.results.pop(request_id)
        latency = answered - self.handed_out.pop(request_id)
        return latency, is_error, json.loads(body or b"null")

    def close(self) -> None:
        self.pending.put(None)
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- the local cloud


class LocalCloud:
    def __init__(self, local_bin: Path, time_scale: str):
        self.bin = local_bin
        self.project = Path(tempfile.mkdtemp(prefix="greenlight-bench-weight."))
        for name in ("template.yaml", "statemachine", ".venv"):
            os.symlink(ROOT / name, self.project / name)
        self.time_scale = time_scale
        self.state: dict = {}

    def run(self, *args, timeout=120):
        return subprocess.run([str(self.bin), *args], cwd=self.project, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)

    def up(self) -> None:
        t0 = time.monotonic()
        p = self.run("up", "--time-scale", self.time_scale, "--rate-limits", "off", timeout=UP_TIMEOUT)
        if p.returncode != 0:
            raise RuntimeError(f"greenlight-local up failed:\n{p.stdout}\n{p.stderr}")
        self.state = json.loads((self.project / ".local-cloud/service/state.json").read_text())
        host = self.state["endpointUrl"].split("//", 1)[1]
        if not host.startswith("127."):
            raise RuntimeError(f"endpoint {self.state['endpointUrl']} is not on loopback")
        log(f"local cloud up at {self.state['endpointUrl']} in {time.monotonic() - t0:.0f}s")

    def down(self) -> None:
        if self.state:
            self.run("down", timeout=120)
        shutil.rmtree(self.project, ignore_errors=True)

    def client(self, service: str):
        creds = self.state["credentials"]
        return boto3.client(service, endpoint_url=self.state["endpointUrl"], region_name=REGION,
                            aws_access_key_id=creds["accessKeyId"],
                            aws_secret_access_key=creds["secretAccessKey"],
                            config=Config(retries={"mode": "standard", "max_attempts": 4}))

    def deploy_once(self) -> str:
        """Uploads a good revision; waits for its deployment to succeed and the execution to end."""
        r = self.state["resources"]
        out = self.project / "revisions"
        p = self.run("revisions", "--out", str(out), "--label", SEED_LABEL)
        if p.returncode != 0:
            raise RuntimeError(f"greenlight-local revisions failed:\n{p.stdout}\n{p.stderr}")
        cd, s3, sfn = self.client("codedeploy"), self.client("s3"), self.client("stepfunctions")
        key = f"{r['artifactPrefix']}{r['application']}/{SEED_LABEL}-good.zip"
        s3.put_object(Bucket=r["bucket"], Key=key, Body=(out / f"{SEED_LABEL}-good.zip").read_bytes())
        deadline = time.monotonic() + DEPLOY_TIMEOUT
        deployment_id = None
        while time.monotonic() < deadline:
            ids = cd.list_deployments(applicationName=r["application"],
                                      deploymentGroupName=r["deploymentGroup"])["deployments"]
            if ids:
                deployment_id = ids[0]
                status = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"]
                if status in ("Failed", "Stopped"):
                    raise RuntimeError(f"seed deployment {deployment_id} ended {status}")
                executions = sfn.list_executions(stateMachineArn=r["stateMachineArn"])["executions"]
                running = [e for e in executions if e["status"] == "RUNNING"]
                if status == "Succeeded" and executions and not running:
                    log(f"seed deployment {deployment_id} Succeeded, pipeline ended")
                    return deployment_id
            time.sleep(2)
        raise TimeoutError(f"seed deployment {deployment_id} did not finish within {DEPLOY_TIMEOUT}s")


# --------------------------------------------------------------------------- runs


def zipped_size(files: list[tuple[str, Path]]) -> int:
    """The deployment zip as scripts/lambda-sizes.py makes it (deflate, level 9)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return len(buffer.getvalue())


def proc_status(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Run:
    def __init__(self, spec: str, kind: str):
        label, _, rest = spec.partition("=")
        function, _, path = rest.partition(":")
        if function not in FUNCTIONS or not label or not path:
            raise SystemExit(f"bad --{kind} {spec!r}: want LABEL=FUNCTION:PATH, FUNCTION one of {list(FUNCTIONS)}")
        self.label, self.kind, self.function = label, kind, function
        # Absolute but not resolved: a venv's python is a symlink that must stay inside the venv.
        self.path = Path(os.path.abspath(path))
        if not os.access(self.path, os.X_OK):
            raise SystemExit(f"--{kind} {spec}: {self.path} is not an executable")
        event_file, self.module, self.template_env = FUNCTIONS[function]
        self.event_file = ROOT / "events" / event_file
        self.inits: list[float] = []
        self.firsts: list[float] = []
        self.warm: list[float] = []
        self.cpu_per_warm: float | None = None
        self.peak_rss = 0
        self.answers: list[dict] = []
        self.errors: list[str] = []

    def zip_size(self) -> int:
        if self.kind == "rust":
            return zipped_size([("bootstrap", self.path)])
        # The twin's own code: boto3 and the runtime interface client come with the managed runtime.
        return zipped_size([(f"{self.module}.py", TWINS / f"{self.module}.py")])

    def binary_size(self) -> int:
        return self.path.stat().st_size if self.kind == "rust" else (TWINS / f"{self.module}.py").stat().st_size

    def command(self) -> list[str]:
        if self.kind == "rust":
            return [str(self.path)]
        return [str(self.path), "-m", "awslambdaric", f"{self.module}.handler"]

    def environment(self, cloud: LocalCloud, api: RuntimeApi) -> dict[str, str]:
        name = f"greenlight-bench-{self.function}"
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"bench/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_LAMBDA_LOG_LEVEL": "INFO",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "AKIDBENCHWEIGHT",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_SESSION_TOKEN": "bench-session",
            "AWS_ENDPOINT_URL": cloud.state["endpointUrl"],
            # Lambda has no shared config files; neither side should find the developer's.
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "STATE_MACHINE_ARN": cloud.state["resources"]["stateMachineArn"],
            **self.template_env,
        }
        if self.kind == "python":
            env.update({"LAMBDA_TASK_ROOT": str(TWINS), "_HANDLER": f"{self.module}.handler",
                        "PYTHONPATH": str(TWINS), "PYTHONDONTWRITEBYTECODE": "1"})
        else:
            env.update({"LAMBDA_TASK_ROOT": str(self.path.parent), "_HANDLER": "bootstrap"})
        return env


def make_event(run: Run, cloud: LocalCloud, deployment_id: str, created_ms: int) -> dict:
    event = json.loads(run.event_file.read_text())
    r = cloud.state["resources"]
    pipeline = event["pipeline"]
    pipeline["application"] = r["application"]
    pipeline["deploymentGroup"] = r["deploymentGroup"]
    if run.function == "deployment-watcher":
        pipeline["deployment"].update(deploymentId=deployment_id, createdAtMs=created_ms,
                                      deadlineMs=created_ms + 3600 * 1000)
        for snapshot in pipeline.get("tuning", {}).get("snapshots", []):
            snapshot["targetGroupArn"] = r["targetGroupArn"]
    return event


class TargetGroupReset:
    """Puts the demo target group back to its seed settings, without the snapshot tag."""

    def __init__(self, cloud: LocalCloud):
        self.elbv2 = cloud.client("elbv2")
        self.arn = cloud.state["resources"]["targetGroupArn"]
        tg = self.elbv2.describe_target_groups(TargetGroupArns=[self.arn])["TargetGroups"][0]
        self.health = {k: tg[k] for k in ("HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds",
                                          "HealthyThresholdCount", "UnhealthyThresholdCount")}
        attrs = self.elbv2.describe_target_group_attributes(TargetGroupArn=self.arn)["Attributes"]
        self.delay = next(a["Value"] for a in attrs if a["Key"] == DEREGISTRATION)
        log(f"target group seed: {self.health}, deregistration {self.delay}s")

    def __call__(self) -> None:
        self.elbv2.remove_tags(ResourceArns=[self.arn], TagKeys=[SNAPSHOT_TAG_KEY])
        self.elbv2.modify_target_group(TargetGroupArn=self.arn, **self.health)
        self.elbv2.modify_target_group_attributes(
            TargetGroupArn=self.arn, Attributes=[{"Key": DEREGISTRATION, "Value": self.delay}])


def cold_start(run: Run, cloud: LocalCloud, event: dict, warm_invokes: int, logs: Path) -> None:
    api = RuntimeApi(f"greenlight-bench-{run.function}")
    log_file = open(logs / f"{run.label}-{len(run.inits)}.log", "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(run.command(), env=run.environment(cloud, api), stdin=subprocess.DEVNULL,
                            stdout=log_file, stderr=subprocess.STDOUT, cwd=str(TWINS if run.kind == "python" else run.path.parent))
    try:
        if not api.first_next_event.wait(INIT_TIMEOUT) or api.first_next is None:
            raise RuntimeError(f"{run.label}: no /next within {INIT_TIMEOUT}s (init error: {api.init_error}); see {log_file.name}")
        run.inits.append(api.first_next - t0)
        latency, is_error, body = api.invoke(event)
        if is_error:
            raise RuntimeError(f"{run.label}: first invoke failed: {body}")
        run.firsts.append(latency)
        run.answers.append(body)
        if warm_invokes:
            cpu_before = proc_cpu_seconds(proc.pid)
            for _ in range(warm_invokes):
                latency, is_error, body = api.invoke(event)
                if is_error:
                    raise RuntimeError(f"{run.label}: warm invoke failed: {body}")
                run.warm.append(latency)
            run.cpu_per_warm = (proc_cpu_seconds(proc.pid) - cpu_before) / warm_invokes
            run.answers.append(body)
        run.peak_rss = max(run.peak_rss, proc_status(proc.pid)["VmHWM"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        api.close()
        log_file.close()


def comparable(function: str, answer: dict) -> object:
    """The parts of an answer both implementations must agree on."""
    if function == "deployment-watcher":
        return (answer.get("deploymentId"), answer.get("status"), answer.get("phase"), answer.get("next"),
                answer.get("waitSeconds"),
                [(r["phase"], r["startedAtMs"], r.get("endedAtMs"), r.get("predictedSeconds"))
                 for r in answer.get("ledger", [])])
    return answer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rust", action="append", default=[], metavar="LABEL=FUNCTION:BOOTSTRAP")
    parser.add_argument("--python", action="append", default=[], metavar="LABEL=FUNCTION:PYTHON")
    parser.add_argument("--local-bin", default=str(ROOT / "target/debug/greenlight-local"))
    parser.add_argument("--time-scale", default="0.05")
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--invokes", type=int, default=200, help="warm invokes after the last cold start")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    runs = [Run(s, "rust") for s in args.rust] + [Run(s, "python") for s in args.python]
    if not runs:
        raise SystemExit("nothing to run: give --rust and/or --python")
    if not 1 <= args.cold_starts <= 20 or not 0 <= args.invokes <= 1000:
        raise SystemExit("--cold-starts 1-20, --invokes 0-1000")
    cloud = LocalCloud(Path(args.local_bin), args.time_scale)
    logs = Path(tempfile.mkdtemp(prefix="greenlight-bench-weight-logs."))
    started = time.time()
    try:
        cloud.up()
        deployment_id = cloud.deploy_once()
        created_ms = int(cloud.client("codedeploy").get_deployment(deploymentId=deployment_id)
                         ["deploymentInfo"]["createTime"].timestamp() * 1000)
        reset = TargetGroupReset(cloud)
        events = {run.label: make_event(run, cloud, deployment_id, created_ms) for run in runs}
        for i in range(args.cold_starts):
            last = i == args.cold_starts - 1
            for run in runs:
                if run.function == "health-check-tuner":
                    reset()
                cold_start(run, cloud, events[run.label], args.invokes if last else 0, logs)
            log(f"cold start {i + 1}/{args.cold_starts} done for {len(runs)} runs")
        reset()
    finally:
        cloud.down()
    results = {"date": time.strftime("%Y-%m-%d", time.gmtime(started)), "coldStarts": args.cold_starts,
               "warmInvokes": args.invokes, "timeScale": args.time_scale, "deploymentId": deployment_id,
               "python": None, "runs": []}
    by_function: dict[str, object] = {}
    for run in runs:
        answers = [comparable(run.function, a) for a in run.answers]
        first = answers[0]
        same_within = all(a == first for a in answers[1:])
        reference = by_function.setdefault(run.function, first)
        results["runs"].append({
            "label": run.label, "kind": run.kind, "function": run.function, "path": str(run.path),
            "initSeconds": run.inits, "firstInvokeSeconds": run.firsts,
            "initMedian": statistics.median(run.inits), "firstInvokeMedian": statistics.median(run.firsts),
            "warmP50": percentile(run.warm, 0.50) if run.warm else None,
            "warmP99": percentile(run.warm, 0.99) if run.warm else None,
            "warmCount": len(run.warm), "cpuPerWarmInvoke": run.cpu_per_warm,
            "peakRssBytes": run.peak_rss, "zipBytes": run.zip_size(), "unzippedBytes": run.binary_size(),
            "answersStable": same_within, "answerMatchesFirstRun": first == reference,
            "answer": run.answers[0],
        })
        if run.kind == "python":
            results["python"] = subprocess.run([str(run.path), "-c",
                "import sys, boto3, botocore, importlib.metadata as m; "
                "print(sys.version.split()[0], boto3.__version__, botocore.__version__, m.version('awslambdaric'))"],
                capture_output=True, text=True, check=True).stdout.split()
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    log(f"results in {args.out}; function logs in {logs}")
    bad = [r["label"] for r in results["runs"] if not (r["answersStable"] and r["answerMatchesFirstRun"])]
    if bad:
        log(f"answers differ for {bad}: the runs did not do the same work (see 'answer' in {args.out})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
