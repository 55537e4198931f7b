#!/usr/bin/env python3
"""Static cross-checks between the SAM template, the state machine and the Rust crates.

These are the contracts no unit test of a single piece can see (cfn-lint, sam validate and
asl-validator each read one file; none notices a missing DefinitionUri file):

  1. placeholders   every ${Name} in each state machine definition has a DefinitionSubstitutions
                    key in template.yaml, and every key is used by the definition.
  2. paths          every CodeUri / DefinitionUri exists; each function builds with the Makefile
                    (BuildMethod makefile, ContextPath/ProjectRootDirectory the repo root) whose
                    build-<LogicalId> line names a bin of the function's CodeUri crate.
  3. invoke-policy  each *FunctionArn substitution is !GetAtt <Function>.Arn of a function in the
                    template, and the state machine has a LambdaInvokePolicy for exactly those.
  4. state-machine-name
                    every ARN the template builds by hand for the state machine or its executions
                    uses the state machine's own Name (the by-name reference that avoids a cycle).
  5. env-vars       every environment variable template.yaml sets for a function is named in that
                    crate's sources, and every variable the crate reads (required/optional/
                    parsed_or/std::env::var, literal or const) is set by template.yaml.
  6. events         every events/*.json is referenced by an include_str! under functions/.
  7. iam-actions    no Allow statement (template and SAM-expanded roles) has an Action with `*`
                    or uses NotAction; every action is a real IAM action.
  8. iam-star-resources
                    a `*` Resource is used only with actions that AWS offers no resource scope for
                    (per cfn-lint's copy of the Service Authorization Reference), and each such
                    statement in template.yaml has a comment just above it saying so.
  9. iam-coverage   every AWS SDK operation a function's code calls (its crate, plus the
                    greenlight-aws modules it uses) is allowed by that function's role, and
                    every action the role allows is called somewhere (least privilege).
 10. managed-policies
                    every role the SAM transform generates carries only the AWS managed policies
                    listed in MANAGED_POLICIES, each only where its reason holds (X-Ray's only on a
                    traced function or state machine).
 11. error-names    every ErrorEquals name in each state machine definition is a Lambda.* /
                    States.* / Sandbox.* / Runtime.* name or one of greenlight_core::errors::ALL (parsed from
                    crates/greenlight-core/src/errors.rs); every name of ours a Retry retries is
                    in errors::RETRIED; and no `fn error_type` body under functions/ or
                    crates/greenlight-aws returns a string literal (names come from the core).

Run with the project venv (it needs cfn-lint's YAML decoder and the SAM translator):
    .venv/bin/python scripts/check-static.py
Exit status 0 when every check passes; the last line is `check-static: N passed, M failed`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# Lambda (and the runtime) provide these; a crate may read them without template.yaml setting them.
PROVIDED_ENV = re.compile(r"^(AWS_[A-Z0-9_]+|_HANDLER|_X_AMZN_TRACE_ID|LAMBDA_TASK_ROOT|LAMBDA_RUNTIME_DIR|RUST_LOG|TZ)$")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Calls that read an environment variable: greenlight_aws::config helpers and std::env.
ENV_READ = re.compile(
    r"\b(?:required|optional|parsed_or|env::var|env::var_os|std::env::var|std::env::var_os)\s*(?:::<[^>]*>)?\s*\(\s*"
    r"(\"(?P<lit>[A-Za-z0-9_]+)\"|(?P<ident>[A-Za-z_][A-Za-z0-9_:]*))"
)
RUST_CONST = re.compile(r"\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&(?:'static\s+)?str\s*=\s*\"([^\"]*)\"")
INCLUDE_STR = re.compile(r"include_str!\s*\(\s*\"([^\"]+)\"\s*\)")


# ----------------------------------------------------------------------------- helpers

class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def run(self, name: str, check: Callable[[], list[str]]) -> None:
        try:
            problems = check()
        except Exception as err:  # a crash in a check is a failure of that check, not of the run
            problems = [f"check crashed: {type(err).__name__}: {err}"]
        if problems:
            self.failed += 1
            print(f"FAIL {name}")
            for problem in problems:
                print(f"     - {problem}")
        else:
            self.passed += 1
            print(f"ok   {name}")


def load_template() -> dict:
    from cfnlint.decode import decode  # noqa: PLC0415 (needs the venv)

    template, matches = decode(str(TEMPLATE))
    if template is None:
        raise SystemExit(f"check-static: cannot parse {TEMPLATE}: {matches}")
    return json.loads(json.dumps(template))  # plain dicts/lists/str


def resources(template: dict, *types: str) -> dict[str, dict]:
    return {
        name: res
        for name, res in template.get("Resources", {}).items()
        if isinstance(res, dict) and res.get("Type") in types
    }


def functions(template: dict) -> dict[str, dict]:
    return resources(template, "AWS::Serverless::Function")


def state_machines(template: dict) -> dict[str, dict]:
    return resources(template, "AWS::Serverless::StateMachine")


def props(res: dict) -> dict:
    return res.get("Properties", {}) or {}


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def rust_sources(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.rs") if "target" not in p.parts)


def walk(node: Any) -> Iterable[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# ----------------------------------------------------------------------------- checks

def check_placeholders(template: dict) -> list[str]:
    problems = []
    machines = state_machines(template)
    if not machines:
        return ["template.yaml declares no AWS::Serverless::StateMachine"]
    for name, res in machines.items():
        uri = props(res).get("DefinitionUri")
        if not isinstance(uri, str):
            problems.append(f"{name}: DefinitionUri must be a local path (got {uri!r})")
            continue
        path = ROOT / uri
        if not path.is_file():
            problems.append(f"{name}: DefinitionUri {uri} does not exist")
            continue
        used = set(PLACEHOLDER.findall(path.read_text(encoding="utf-8")))
        given = set((props(res).get("DefinitionSubstitutions") or {}).keys())
        for missing in sorted(used - given):
            problems.append(f"{name}: {uri} uses ${{{missing}}} but DefinitionSubstitutions has no {missing}")
        for unused in sorted(given - used):
            problems.append(f"{name}: DefinitionSubstitutions.{unused} is not used by {uri}")
    return problems


def cargo_bins(cargo_toml: Path) -> set[str]:
    import tomllib  # noqa: PLC0415 (python >= 3.11)

    data = tomllib.loads(cargo_toml.read_text(encoding="utf-8"))
    bins = {b.get("name") for b in data.get("bin", []) if isinstance(b, dict)}
    if not bins and (cargo_toml.parent / "src" / "main.rs").is_file():
        bins.add(data.get("package", {}).get("name"))
    return {b for b in bins if b}


def makefile_binaries() -> dict[str, str]:
    """The Makefile's `build-<LogicalId>: BINARY = <bin>` lines, by logical id."""
    found = {}
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^build-([A-Za-z0-9]+):\s*BINARY\s*=\s*([A-Za-z0-9_-]+)\s*$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def check_paths(template: dict) -> list[str]:
    problems = []
    for name, res in functions(template).items():
        uri = props(res).get("CodeUri")
        if not isinstance(uri, str):
            problems.append(f"{name}: CodeUri must be a local path (got {uri!r})")
            continue
        crate = ROOT / uri
        if not crate.is_dir():
            problems.append(f"{name}: CodeUri {uri} does not exist")
            continue
        metadata = res.get("Metadata", {}) or {}
        if metadata.get("BuildMethod") != "makefile":
            problems.append(f"{name}: Metadata.BuildMethod must be makefile (one workspace build, see Makefile)")
            continue
        for key in ("ContextPath", "ProjectRootDirectory"):
            if metadata.get(key) != ".":
                problems.append(f"{name}: Metadata.{key} must be '.' (the Makefile and the workspace are at the repo root)")
        cargo_toml = crate / "Cargo.toml"
        if not cargo_toml.is_file():
            problems.append(f"{name}: {uri}/Cargo.toml does not exist")
            continue
        binary = makefile_binaries().get(name)
        bins = cargo_bins(cargo_toml)
        if binary is None:
            problems.append(f"{name}: the Makefile has no 'build-{name}: BINARY = <bin>' line")
        elif binary not in bins:
            problems.append(f"{name}: the Makefile builds {binary!r}, not a bin of {uri}/Cargo.toml ({sorted(bins)})")
    for name, res in state_machines(template).items():
        uri = props(res).get("DefinitionUri")
        if isinstance(uri, str) and not (ROOT / uri).is_file():
            problems.append(f"{name}: DefinitionUri {uri} does not exist")
    return problems


def getatt_target(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        if isinstance(target, list) and len(target) == 2 and target[1] == "Arn":
            return target[0]
    return None


def check_invoke_policy(template: dict) -> list[str]:
    problems = []
    fns = functions(template)
    for name, res in state_machines(template).items():
        substitutions = props(res).get("DefinitionSubstitutions") or {}
        invoked = set()
        for key, value in substitutions.items():
            if not key.endswith("FunctionArn"):
                continue
            target = getatt_target(value)
            if target not in fns:
                problems.append(f"{name}: DefinitionSubstitutions.{key} must be !GetAtt <Function>.Arn of a function in the template")
                continue
            invoked.add(target)
        allowed = set()
        for policy in as_list(props(res).get("Policies") or []):
            if isinstance(policy, dict) and "LambdaInvokePolicy" in policy:
                fn = (policy["LambdaInvokePolicy"] or {}).get("FunctionName")
                if isinstance(fn, dict) and "Ref" in fn:
                    allowed.add(fn["Ref"])
                else:
                    problems.append(f"{name}: LambdaInvokePolicy.FunctionName must be !Ref <Function> (got {fn!r})")
        for missing in sorted(invoked - allowed):
            problems.append(f"{name}: invokes {missing} but has no LambdaInvokePolicy for it")
        for extra in sorted(allowed - invoked):
            problems.append(f"{name}: may invoke {extra} but the definition never calls it (least privilege)")
    return problems


def check_state_machine_name(template: dict) -> list[str]:
    problems = []
    names = []
    for name, res in state_machines(template).items():
        sm_name = props(res).get("Name")
        sub = sm_name.get("Fn::Sub") if isinstance(sm_name, dict) else None
        if not isinstance(sub, str):
            problems.append(f"{name}: Name must be an explicit !Sub string so others can reference it by name")
            continue
        names.append(sub)
    arn_ref = re.compile(r":states:.*?:(?:stateMachine|execution):(.*?)(?::\*)?$")
    for node in walk(template.get("Resources", {})):
        if isinstance(node, dict) and isinstance(node.get("Fn::Sub"), str):
            for found in arn_ref.findall(node["Fn::Sub"]):
                if found not in names:
                    problems.append(f"hand-built state machine ARN names {found!r}, but the state machine is named {names}")
    return problems


def env_reads(sources: list[Path], consts: dict[str, str]) -> tuple[set[str], list[str]]:
    """Names of environment variables read in `sources`, and reads we could not resolve."""
    names: set[str] = set()
    unresolved: list[str] = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for match in ENV_READ.finditer(text):
            literal, ident = match.group("lit"), match.group("ident")
            if literal:
                if ENV_NAME.match(literal):
                    names.add(literal)
                continue
            short = ident.rsplit("::", 1)[-1]
            if short in consts:
                names.add(consts[short])
            elif ENV_NAME.match(short) and short.isupper():
                unresolved.append(f"{rel(path)}: reads the environment through {ident}, which names no const &str")
    return names, unresolved


def check_env_vars(template: dict) -> list[str]:
    problems = []
    global_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
    consts: dict[str, str] = {}
    for path in rust_sources(ROOT / "crates") + rust_sources(ROOT / "functions"):
        for const, value in RUST_CONST.findall(path.read_text(encoding="utf-8")):
            consts.setdefault(const, value)
    for name, res in functions(template).items():
        uri = props(res).get("CodeUri")
        if not isinstance(uri, str) or not (ROOT / uri / "src").is_dir():
            problems.append(f"{name}: no crate sources under {uri}/src")
            continue
        sources = rust_sources(ROOT / uri / "src")
        text = "\n".join(p.read_text(encoding="utf-8") for p in sources)
        env = dict(global_env)
        env.update((props(res).get("Environment") or {}).get("Variables") or {})
        for var in sorted(env):
            if f'"{var}"' not in text:
                problems.append(f"{name}: template.yaml sets {var}, but {uri}/src never names \"{var}\" (not read, or misspelt)")
        read, unresolved = env_reads(sources, consts)
        problems.extend(f"{name}: {u}" for u in unresolved)
        for var in sorted(read):
            if var not in env and not PROVIDED_ENV.match(var):
                problems.append(f"{name}: {uri} reads {var}, but template.yaml does not set it for this function")
    return problems


def check_events() -> list[str]:
    events_dir = ROOT / "events"
    event_files = sorted(events_dir.glob("*.json")) if events_dir.is_dir() else []
    referenced: set[Path] = set()
    for path in rust_sources(ROOT / "functions"):
        for target in INCLUDE_STR.findall(path.read_text(encoding="utf-8")):
            referenced.add(Path(os.path.normpath(path.parent / target)))
    problems = []
    for event in event_files:
        if event.resolve() not in {p.resolve() for p in referenced}:
            problems.append(f"{rel(event)} is not used by any include_str! under functions/ (every fixture must be parsed by its handler in a test)")
    return problems


def transformed(template: dict) -> dict:
    """The template after the SAM transform (offline), to see the roles SAM generates."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform  # noqa: PLC0415 (needs the venv)

    class NoManagedPolicies:
        def load(self) -> dict:
            return {}

    doc = copy.deepcopy(template)
    for res in doc.get("Resources", {}).values():
        p = res.get("Properties", {}) if isinstance(res, dict) else {}
        for field in ("CodeUri", "DefinitionUri"):
            if isinstance(p.get(field), str):
                p[field] = f"s3://placeholder-bucket/{p[field]}"
    return transform(doc, {}, NoManagedPolicies())


def iam_statements(template: dict) -> Iterable[tuple[str, dict]]:
    """(where, statement) for every policy statement in IAM roles/policies, bucket/topic/queue policies."""
    for name, res in template.get("Resources", {}).items():
        if not isinstance(res, dict):
            continue
        p = props(res)
        documents = []
        if res.get("Type") == "AWS::IAM::Role":
            documents += [(f"{name}.{pol.get('PolicyName')}", pol.get("PolicyDocument")) for pol in p.get("Policies", []) or []]
        elif res.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append((name, p.get("PolicyDocument")))
        elif res.get("Type") in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
            documents.append((name, p.get("PolicyDocument")))
        elif res.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for i, pol in enumerate(as_list(p.get("Policies") or [])):
                if isinstance(pol, dict) and "Statement" in pol:
                    documents.append((f"{name}.Policies[{i}]", pol))
        for where, doc in documents:
            if isinstance(doc, dict):
                for i, statement in enumerate(as_list(doc.get("Statement") or [])):
                    if isinstance(statement, dict):
                        yield f"{where}.Statement[{statement.get('Sid', i)}]", statement


def policy_data() -> dict:
    import cfnlint  # noqa: PLC0415

    path = Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json"
    return json.loads(path.read_text(encoding="utf-8"))


def action_resource_types(data: dict, action: str) -> list[str] | None:
    """Resource types the action can be scoped to ([] = none, so `*`), None = unknown action."""
    if not isinstance(action, str) or ":" not in action:
        return None
    service, name = action.split(":", 1)
    entry = (data.get(service.lower()) or {}).get("Actions", {}).get(name.lower())
    if entry is None:
        return None
    return list(entry.get("Resources", []) or [])


def check_iam_actions(template: dict, expanded: dict) -> list[str]:
    problems = []
    data = policy_data()
    for source, doc in (("template.yaml", template), ("after the SAM transform", expanded)):
        for where, statement in iam_statements(doc):
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement:
                problems.append(f"{source}: {where}: Allow with NotAction grants everything else")
            for action in as_list(statement.get("Action", [])):
                if not isinstance(action, str):
                    problems.append(f"{source}: {where}: Action {action!r} is not a plain string")
                elif "*" in action or "?" in action:
                    problems.append(f"{source}: {where}: Action {action} has a wildcard; name each action")
                elif action_resource_types(data, action) is None:
                    problems.append(f"{source}: {where}: {action} is not an IAM action (typo?)")
    return problems


def star_statement_comment_lines() -> dict[int, bool]:
    """For each `Resource: "*"` line of template.yaml: is the statement preceded by a comment?"""
    lines = TEMPLATE.read_text(encoding="utf-8").splitlines()
    result = {}
    for number, line in enumerate(lines):
        if not re.match(r"^\s*Resource:\s*[\"']\*[\"']\s*$", line):
            continue
        indent = len(line) - len(line.lstrip())
        start = number
        while start > 0:
            start -= 1
            candidate = lines[start]
            stripped = candidate.lstrip()
            if stripped.startswith("- ") and len(candidate) - len(stripped) == indent - 2:
                break
        above = lines[start - 1].strip() if start > 0 else ""
        result[number + 1] = above.startswith("#") and "resource" in above.lower()
    return result


# Actions whose listed resource types are all optional and do not cover what greenlight asks
# for, so only Resource "*" authorizes the call (action -> why).
STAR_ONLY_FOR_OUR_USE = {
    # Service Authorization Reference (CloudWatch): GetMetricData's one resource type is
    # `dataset` (CloudWatch datasets); metrics of AWS namespaces such as AWS/ApplicationELB
    # have no ARN, so a policy scoped to dataset ARNs would deny the bake's queries.
    "cloudwatch:getmetricdata": "AWS namespace metrics have no resource ARN",
}


def check_iam_star_resources(template: dict, expanded: dict) -> list[str]:
    problems = []
    data = policy_data()
    for source, doc in (("template.yaml", template), ("after the SAM transform", expanded)):
        for where, statement in iam_statements(doc):
            if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource", [])):
                continue
            for action in as_list(statement.get("Action", [])):
                types = action_resource_types(data, action) if isinstance(action, str) else None
                if types and action.lower() not in STAR_ONLY_FOR_OUR_USE:
                    problems.append(
                        f"{source}: {where}: {action} can be scoped to {', '.join(types)}; "
                        f"do not grant it on Resource \"*\""
                    )
    for line, commented in sorted(star_statement_comment_lines().items()):
        if not commented:
            problems.append(f"template.yaml:{line}: a Resource \"*\" statement needs a comment just above it saying why (no resource scope)")
    return problems


# Rust SDK crate -> IAM service prefix.
SDK_SERVICES = {
    "aws-sdk-codedeploy": "codedeploy",
    "aws-sdk-sfn": "states",
    "aws-sdk-elasticloadbalancingv2": "elasticloadbalancing",
    "aws-sdk-autoscaling": "autoscaling",
    "aws-sdk-ec2": "ec2",
    "aws-sdk-s3": "s3",
    "aws-sdk-sns": "sns",
    "aws-sdk-codepipeline": "codepipeline",
    "aws-sdk-cloudwatch": "cloudwatch",
}
# SDK operations whose IAM action has another name.
OPERATION_ACTIONS = {
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "list_objects_v2"): "s3:ListBucket",
    ("s3", "head_bucket"): "s3:ListBucket",
}
# Actions a role may hold although no code calls them by that name (SAM-added or implied).
IMPLIED_ACTIONS = {
    "sqs:SendMessage",  # EventInvokeConfig OnFailure destination: Lambda sends, with the function's role
    # CreateDeployment is authorized against the application and the deployment config too:
    "codedeploy:GetApplicationRevision",
    "codedeploy:RegisterApplicationRevision",
    "codedeploy:GetDeploymentConfig",
    # sns:Publish to a KMS-encrypted topic: SNS calls KMS with the publisher's permissions
    # (SNS developer guide, "Encryption at rest": the publisher needs kms:GenerateDataKey and kms:Decrypt).
    "kms:GenerateDataKey",
    "kms:Decrypt",
    # GetObjectTagging with a versionId is authorized as s3:GetObjectVersionTagging
    # (Amazon S3 API reference, GetObjectTagging: "To use this operation on a specific
    # version, you need the s3:GetObjectVersionTagging permission").
    "s3:GetObjectVersionTagging",
    # deployment-group-resource: Create/UpdateDeploymentGroup pass the group's service role
    # (iam:PassRole, scoped by iam:PassedToService), and tags on CreateApplication /
    # CreateDeploymentGroup; the CodeDeploy docs do not say whether tag-on-create is also
    # authorized as codedeploy:TagResource, so the role holds it (harsher reading), scoped.
    "iam:PassRole",
    "codedeploy:TagResource",
}


def crate_services(cargo_toml: Path) -> set[str]:
    import tomllib  # noqa: PLC0415

    data = tomllib.loads(cargo_toml.read_text(encoding="utf-8"))
    return {SDK_SERVICES[d] for d in data.get("dependencies", {}) if d in SDK_SERVICES}


def production_text(path: Path) -> str:
    """A source file without its #[cfg(test)] part (tests name operations through mocks)."""
    if path.name == "tests.rs" or "tests" in path.parts:
        return ""
    text = path.read_text(encoding="utf-8")
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


# Receiver names -> service, to tell apart operations several services share (describe_tags).
RECEIVER_HINTS = (
    ("codepipeline", "codepipeline"),
    ("codedeploy", "codedeploy"),
    ("elb", "elasticloadbalancing"),
    ("load_balancer", "elasticloadbalancing"),
    ("autoscaling", "autoscaling"),
    ("asg", "autoscaling"),
    ("ec2", "ec2"),
    ("sfn", "states"),
    ("states", "states"),
    ("sns", "sns"),
    ("s3", "s3"),
)
TOP_LEVEL_FN = re.compile(r"^(?:pub(?:\([a-z]+\))?\s+)?(?:async\s+)?fn\s+([a-z_][a-z0-9_]*)", re.M)
SDK_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)?\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)")


def top_level_fns(text: str) -> dict[str, str]:
    """name -> body of each top-level fn (from its line to the next `}` in column 0)."""
    fns = {}
    for match in TOP_LEVEL_FN.finditer(text):
        end = text.find("\n}", match.end())
        fns[match.group(1)] = text[match.start(): len(text) if end < 0 else end + 2]
    return fns


def used_shared_code(own: str) -> list[tuple[Path, str]]:
    """The greenlight-aws fns the function's code uses, with the fns they call in turn (in
    their own module, or in another greenlight-aws module theirs names as `module::`)."""
    shared_src = ROOT / "crates" / "greenlight-aws" / "src"
    used: list[tuple[Path, str]] = []
    if not shared_src.is_dir():
        return used
    modules = {
        module: (production_text(module), top_level_fns(production_text(module)))
        for module in sorted(shared_src.glob("*.rs"))
        if module.stem not in ("lib", "config")
    }
    todo = [
        (module, name)
        for module, (_, fns) in modules.items()
        if re.search(rf"\b{module.stem}::", own)
        for name in fns
        if re.search(rf"\b{name}\b", own)
    ]
    seen: set[tuple[Path, str]] = set()
    while todo:
        module, name = todo.pop()
        if (module, name) in seen:
            continue
        seen.add((module, name))
        body = modules[module][1][name]
        for other_module, (_, other_fns) in modules.items():
            if other_module != module and not re.search(rf"\b{other_module.stem}::", modules[module][0]):
                continue
            todo.extend(
                (other_module, other)
                for other in other_fns
                if (other_module, other) not in seen and re.search(rf"\b{other}\s*\(", body)
            )
    used.extend((module, modules[module][1][name]) for module, name in sorted(seen))
    return used


def called_actions(function_dir: Path, data: dict) -> dict[str, set[str]]:
    """IAM actions (lower-case) of the SDK operations the function's code calls -> files.

    An SDK call reads `elbv2.describe_target_groups()`: the operation is the snake_case IAM
    action of a service the crate depends on (the receiver's name tells services apart when
    several have the operation). The greenlight-aws fns the crate uses (and the fns those
    call) count as its code.
    """
    services = crate_services(function_dir / "Cargo.toml")
    own_files = [(p, production_text(p)) for p in rust_sources(function_dir / "src")]
    own = "\n".join(text for _, text in own_files)
    found: dict[str, set[str]] = {}
    for path, text in own_files + used_shared_code(own):
        for match in SDK_CALL.finditer(text):
            receiver, op = (match.group(1) or "").lower(), match.group(2)
            candidates = []
            for service in services:
                action = OPERATION_ACTIONS.get((service, op))
                if action is None and op.replace("_", "") in (data.get(service) or {}).get("Actions", {}):
                    action = f"{service}:{op.replace('_', '')}"
                if action:
                    candidates.append((service, action))
            hinted = [c for c in candidates if any(h in receiver and c[0] == svc for h, svc in RECEIVER_HINTS)]
            for _, action in hinted or candidates:
                found.setdefault(action.lower(), set()).add(rel(path))
    return found


def role_actions(expanded: dict, function: str) -> set[str]:
    role = expanded.get("Resources", {}).get(f"{function}Role", {})
    actions = set()
    for _, statement in iam_statements({"Resources": {f"{function}Role": role}}):
        if statement.get("Effect") == "Allow":
            actions |= {a for a in as_list(statement.get("Action", [])) if isinstance(a, str)}
    return actions


def check_iam_coverage(template: dict, expanded: dict) -> list[str]:
    problems = []
    data = policy_data()
    for name, res in functions(template).items():
        uri = props(res).get("CodeUri")
        if not isinstance(uri, str) or not (ROOT / uri / "Cargo.toml").is_file():
            continue
        called = called_actions(ROOT / uri, data)
        allowed = role_actions(expanded, name)
        allowed_lower = {a.lower() for a in allowed}
        for action in sorted(called):
            if action not in allowed_lower:
                where = ", ".join(sorted(called[action]))
                problems.append(f"{name}: the code calls {action} ({where}) but its role does not allow it")
        implied_lower = {a.lower() for a in IMPLIED_ACTIONS}
        for action in sorted(allowed):
            if action.lower() not in called and action.lower() not in implied_lower:
                problems.append(f"{name}: its role allows {action}, but no code of {uri} calls it (remove it, or it is not written yet)")
    return problems


# ----------------------------------------------------------------------------- managed policies

# AWS managed policies SAM attaches to the roles it generates, and when each is allowed. SAM adds
# them itself (samtranslator: sam_resources.py and stepfunctions/generators.py); a template cannot
# narrow them, so this pins them instead.
#   AWSLambdaBasicExecutionRole: logs:CreateLogGroup/CreateLogStream/PutLogEvents for the function.
#   AWSLambdaVPCAccessExecutionRole: the ENI actions a function in a VPC needs.
#   AWSXrayWriteOnlyAccess: xray:PutTraceSegments, xray:PutTelemetryRecords and xray:GetSampling*,
#     which have no resource-level permissions (Service Authorization Reference, "Actions,
#     resources, and condition keys for AWS X-Ray": no resource type for these actions, so the
#     action-scoped `*` is the only form AWS offers); allowed only with tracing on.
MANAGED_POLICY_PREFIX = "arn:aws:iam::aws:policy/"
XRAY_POLICIES = {"AWSXrayWriteOnlyAccess", "AWSXRayDaemonWriteAccess"}


def traced(template: dict, res: dict) -> bool:
    """Tracing on for a function (its own or the Globals' Tracing: Active) or a state machine."""
    if res.get("Type") == "AWS::Serverless::StateMachine":
        return (props(res).get("Tracing") or {}).get("Enabled") is True
    tracing = props(res).get("Tracing", ((template.get("Globals") or {}).get("Function") or {}).get("Tracing"))
    return tracing == "Active"


def check_managed_policies(template: dict, expanded: dict) -> list[str]:
    problems = []
    sources = {**functions(template), **state_machines(template)}
    for name, res in sources.items():
        role = expanded.get("Resources", {}).get(f"{name}Role")
        if not isinstance(role, dict):
            continue
        arns = props(role).get("ManagedPolicyArns") or []
        allowed = set()
        if res.get("Type") == "AWS::Serverless::Function":
            allowed.add("service-role/AWSLambdaBasicExecutionRole")
            if props(res).get("VpcConfig"):
                allowed.add("service-role/AWSLambdaVPCAccessExecutionRole")
        if traced(template, res):
            allowed |= XRAY_POLICIES
        for arn in arns:
            short = arn[len(MANAGED_POLICY_PREFIX):] if isinstance(arn, str) and arn.startswith(MANAGED_POLICY_PREFIX) else None
            if short not in allowed:
                problems.append(f"{name}Role carries the managed policy {arn!r}, which is not allowed for it (see MANAGED_POLICIES in scripts/check-static.py)")
        if traced(template, res) and not XRAY_POLICIES & {a[len(MANAGED_POLICY_PREFIX):] for a in arns if isinstance(a, str)}:
            problems.append(f"{name} is traced but its role has no X-Ray write policy: traces would be refused")
    return problems


def ref_target(value: Any) -> str | None:
    """The logical id of a `!Ref X` (as the YAML loader gives it: {"Ref": X})."""
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        return value["Ref"]
    return None


def check_operator_pack(template: dict) -> list[str]:
    """Every function is watched: an AWS/Lambda Errors alarm on it and a line in the dashboard."""
    problems = []
    alarmed = set()
    for res in resources(template, "AWS::CloudWatch::Alarm").values():
        p = props(res)
        if p.get("Namespace") == "AWS/Lambda" and p.get("MetricName") == "Errors":
            for dim in p.get("Dimensions") or []:
                if dim.get("Name") == "FunctionName" and ref_target(dim.get("Value")):
                    alarmed.add(ref_target(dim.get("Value")))
    dashboards = resources(template, "AWS::CloudWatch::Dashboard")
    body = json.dumps([props(d).get("DashboardBody") for d in dashboards.values()])
    for name in functions(template):
        if name not in alarmed:
            problems.append(f"{name} has no AWS/Lambda Errors alarm (add a <Name>ErrorsAlarm like the others)")
        if "${" + name + "}" not in body:
            problems.append(f"{name} is missing from the dashboard (add it to the 'Function errors' widget)")
    if not dashboards:
        problems.append("template.yaml has no AWS::CloudWatch::Dashboard")
    return problems


# ----------------------------------------------------------------------------- error names

ERRORS_RS = ROOT / "crates" / "greenlight-core" / "src" / "errors.rs"
ERROR_CONST = re.compile(r"pub\s+const\s+([A-Z][A-Z0-9_]*)\s*:\s*&str\s*=\s*\"([^\"]+)\"\s*;")
ERROR_LIST = re.compile(r"pub\s+const\s+([A-Z][A-Z0-9_]*)\s*:\s*&\[&str\]\s*=\s*&\[(.*?)\];", re.S)
SERVICE_ERROR_PREFIXES = ("Lambda.", "States.", "Sandbox.", "Runtime.")
ERROR_TYPE_FN = re.compile(r"\bfn\s+error_type\s*\(")
STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')


def core_error_names() -> tuple[set[str], set[str]]:
    """errors::ALL and errors::RETRIED as sets of strings, from errors.rs."""
    text = production_text(ERRORS_RS)
    consts = dict(ERROR_CONST.findall(text))
    lists: dict[str, set[str]] = {}
    for name, body in ERROR_LIST.findall(text):
        items: set[str] = set()
        for item in (i.strip() for i in body.split(",")):
            if not item:
                continue
            if item.startswith('"'):
                items.add(item.strip('"'))
            elif item in consts:
                items.add(consts[item])
            else:
                raise ValueError(f"{rel(ERRORS_RS)}: {name} lists {item}, which is no const &str in errors.rs")
        lists[name] = items
    if "ALL" not in lists or "RETRIED" not in lists:
        raise ValueError(f"{rel(ERRORS_RS)} has no `pub const ALL` / `pub const RETRIED` list")
    return lists["ALL"], lists["RETRIED"]


def definition_text(template: dict, name: str, res: dict) -> tuple[str, str] | None:
    uri = props(res).get("DefinitionUri")
    if isinstance(uri, str) and (ROOT / uri).is_file():
        return uri, (ROOT / uri).read_text(encoding="utf-8")
    return None


def asl_retriers_and_catchers(text: str) -> Iterable[tuple[str, str, list[str]]]:
    """(state, "Retry"|"Catch", ErrorEquals) of every task, from a definition whose numeric
    ${...} placeholders are unquoted (replaced by 1 to parse it)."""
    doc = json.loads(PLACEHOLDER.sub("1", text))
    stack = [doc]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        for state_name, state in (node.get("States") or {}).items():
            if not isinstance(state, dict):
                continue
            for kind in ("Retry", "Catch"):
                for rule in state.get(kind) or []:
                    yield state_name, kind, [e for e in as_list(rule.get("ErrorEquals", [])) if isinstance(e, str)]
            stack.extend(state.get("Branches") or [])
            if isinstance(state.get("Iterator"), dict):
                stack.append(state["Iterator"])
            if isinstance(state.get("ItemProcessor"), dict):
                stack.append(state["ItemProcessor"])


def fn_bodies(text: str, pattern: re.Pattern[str]) -> Iterable[str]:
    """The body (balanced braces) of every fn whose signature `pattern` matches."""
    for match in pattern.finditer(text):
        start = text.find("{", match.end())
        if start < 0:
            continue
        depth = 0
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    yield text[start: i + 1]
                    break


def check_error_names(template: dict) -> list[str]:
    problems = []
    known, retried = core_error_names()
    for name, res in state_machines(template).items():
        found = definition_text(template, name, res)
        if found is None:
            continue
        uri, text = found
        for state, kind, names in asl_retriers_and_catchers(text):
            # AWS reports a function timeout or crash as Sandbox.Timedout /
            # Runtime.ExitError, or as Lambda.Unknown ("Unhandled errors in
            # Lambda are reported as Lambda.Unknown ... out-of-memory errors and
            # function timeouts", Step Functions developer guide, "Handle Lambda
            # service exceptions"): a retrier for one must name the other.
            if kind == "Retry" and {"Sandbox.Timedout", "Runtime.ExitError"} & set(names) and "Lambda.Unknown" not in names:
                problems.append(f"{uri}: {state}.Retry retries {sorted(set(names) & {'Sandbox.Timedout', 'Runtime.ExitError'})} but not 'Lambda.Unknown', the name AWS may report for the same timeout or crash")
            for error in names:
                if error.startswith(SERVICE_ERROR_PREFIXES):
                    continue
                if error not in known:
                    problems.append(f"{uri}: {state}.{kind} names {error!r}, which is not in greenlight_core::errors::ALL (add the constant there, or fix the name)")
                elif kind == "Retry" and error not in retried:
                    problems.append(f"{uri}: {state}.Retry retries {error!r}, which is not in greenlight_core::errors::RETRIED (only names the core says are safe to retry)")
    sources = rust_sources(ROOT / "functions") + rust_sources(ROOT / "crates" / "greenlight-aws")
    for path in sources:
        text = production_text(path)
        for body in fn_bodies(text, ERROR_TYPE_FN):
            for literal in STRING_LITERAL.findall(body):
                problems.append(f"{rel(path)}: fn error_type returns the literal {literal}; use a greenlight_core::errors constant")
    return problems


# ----------------------------------------------------------------------------- main

def rust_const(path: Path, pattern: str) -> int | None:
    match = re.search(pattern, path.read_text())
    return int(match.group(1).replace("_", "")) if match else None


def check_failure_handler_budget(template: dict) -> list[str]:
    """The failure handler's waits on the cloud fit its Timeout on AWS.

    The local cloud gives a hosted function its scaled Timeout plus a real-time
    allowance for its own work (crates/local-cloud/src/lambda_host.rs
    `real_timeout`), so a function whose waits alone outlast its Timeout would
    not time out there: this check stands in for that case on AWS.
    """
    res = functions(template).get("FailureHandlerFunction")
    if res is None:
        return ["FailureHandlerFunction not found in template.yaml"]
    timeout = props(res).get("Timeout", template.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    wait = props(res).get("Environment", {}).get("Variables", {}).get("ROLLBACK_WAIT_SECONDS")
    core = ROOT / "crates" / "greenlight-core" / "src" / "bake"
    settle = rust_const(core / "mod.rs", r"fn default_standby_settle\(\) -> u32 \{\s*(\d+)\s*\}")
    reserve_ms = rust_const(core / "standby_record.rs", r"pub const SETTLE_RESERVE_MS: i64 = ([\d_]+);")
    if wait is None or settle is None or reserve_ms is None:
        return [f"cannot read ROLLBACK_WAIT_SECONDS ({wait}), the default standby settle ({settle}) or SETTLE_RESERVE_MS ({reserve_ms})"]
    need = int(wait) + settle + reserve_ms // 1000
    if need > int(timeout):
        return [
            f"FailureHandlerFunction Timeout {timeout} s < ROLLBACK_WAIT_SECONDS {wait} + default standbySettleSeconds {settle}"
            f" + report reserve {reserve_ms // 1000} s = {need} s: raise the Timeout or shorten the wait"
        ]
    return []


def main() -> int:
    template = load_template()
    report = Report()
    report.run("placeholders: ASL ${...} <-> DefinitionSubstitutions", lambda: check_placeholders(template))
    report.run("paths: CodeUri / DefinitionUri exist, the Makefile builds each function's bin", lambda: check_paths(template))
    report.run("invoke-policy: state machine may invoke exactly the functions it calls", lambda: check_invoke_policy(template))
    report.run("state-machine-name: hand-built ARNs use the state machine's Name", lambda: check_state_machine_name(template))
    report.run("env-vars: template.yaml <-> each crate's Config", lambda: check_env_vars(template))
    report.run("events: every events/*.json is parsed by a handler test (include_str!)", check_events)
    expanded: dict = {}
    try:
        expanded = transformed(template)
    except Exception as err:
        print(f"FAIL sam-transform: the SAM transform failed offline: {err}")
        report.failed += 1
    report.run("iam-actions: no wildcard or unknown action in any Allow", lambda: check_iam_actions(template, expanded))
    report.run("iam-star-resources: Resource \"*\" only where AWS has no resource scope", lambda: check_iam_star_resources(template, expanded))
    report.run("iam-coverage: each role allows exactly the AWS calls its code makes", lambda: check_iam_coverage(template, expanded))
    report.run("managed-policies: generated roles carry only the allowed AWS managed policies", lambda: check_managed_policies(template, expanded))
    report.run("operator-pack: every function has an Errors alarm and a dashboard line", lambda: check_operator_pack(template))
    report.run("error-names: ASL Retry/Catch names and the functions' errorTypes come from greenlight_core::errors", lambda: check_error_names(template))
    report.run("failure-handler-budget: rollback wait + standby settle + report reserve fit the failure handler's Timeout", lambda: check_failure_handler_budget(template))
    print(f"check-static: {report.passed} passed, {report.failed} failed")
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
