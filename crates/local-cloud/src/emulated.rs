//! The one table of AWS behaviours the local cloud emulates where AWS bites,
//! each with its source and whether AWS documents it. The README's emulation
//! table (between `<!-- emulated:begin -->` and `<!-- emulated:end -->`) is
//! [`readme_table`] verbatim (a test checks they agree), and the test run
//! writes [`reliability_section`] into RELIABILITY.md. The code that emulates
//! each behaviour cites the same source in its comments.

/// Whether AWS documents the behaviour as emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Emulated as the cited AWS document says.
    Documented,
    /// AWS does not document this detail (named here): the harsher reading is emulated.
    Harsher(&'static str),
    /// AWS does not document this detail and the gentler reading is kept on
    /// purpose: why no greenlight behaviour can depend on it (named here).
    Gentler(&'static str),
    /// AWS documents the behaviour, and the local cloud cannot follow it
    /// without being harsher than AWS (how, named here).
    HarsherThanDocumented(&'static str),
}

impl Reading {
    pub fn text(self) -> String {
        match self {
            Self::Documented => "documented".to_string(),
            Self::Harsher(detail) => format!("undocumented: harsher reading ({detail})"),
            Self::Gentler(why) => format!("undocumented: gentler reading on purpose ({why})"),
            Self::HarsherThanDocumented(how) => {
                format!("documented; the local cloud is harsher ({how})")
            }
        }
    }
}

/// One emulated behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emulated {
    pub behaviour: &'static str,
    pub emulation: &'static str,
    /// AWS document name(s), with URL.
    pub source: &'static str,
    pub reading: Reading,
}

pub const EMULATED: &[Emulated] = &[
    Emulated {
        behaviour: "ALB registration delay",
        emulation: "a registered target stays `initial` (`Elb.RegistrationInProgress`) and is not health checked for 10 s (configurable, `LoadBalancer::set_propagation`); its first check comes one health-check interval after that, then it needs its healthy threshold of checks",
        source: "ELB guide \"Register targets\" (\"as soon as the registration process completes and the target passes the initial health checks\"), https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-register-targets.html",
        reading: Reading::Harsher("no ALB figure is documented; 10 s is the low end of reported values; when the first check runs is not documented either: one interval later"),
    },
    Emulated {
        behaviour: "ALB deregistration delay",
        emulation: "a deregistered target shows `draining` at once but still gets new requests for 5 s; its drain cannot complete before",
        source: "widely reported, against the ELB guide's \"stops routing ... as soon as you deregister it\": https://github.com/kubernetes-sigs/aws-load-balancer-controller/issues/1064",
        reading: Reading::Harsher("the propagation delay of a deregistration"),
    },
    Emulated {
        behaviour: "ALB fail-open",
        emulation: "only when every registered target is `unhealthy`; never to `initial` targets; a mix of `initial` and `unhealthy` gets 503",
        source: "ELB guide \"Health checks for Application Load Balancer target groups\", https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html",
        reading: Reading::Harsher("a mix of `initial` and `unhealthy` targets"),
    },
    Emulated {
        behaviour: "ALB weighted forward",
        emulation: "the local listener follows moto's listener default actions: `ForwardConfig.TargetGroups` weights split requests (weighted round robin); weight 0 gets no request but its group counts as in use",
        source: "ELB guide \"Listener rules for your Application Load Balancer\" (forward actions, weighted target groups), https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-action-types.html",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "ALB health checks only in use",
        emulation: "a target group no listener or rule forwards to (any weight) is not health checked: its targets are `unused` (`Target.NotInUse`); once a listener forwards to it they are `initial` and checked from scratch",
        source: "ELB guide \"Health checks for Application Load Balancer target groups\" (reason code `Target.NotInUse`: \"Target group is not configured to receive traffic from the load balancer\"), https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "ALB listener change delay",
        emulation: "a ModifyListener / ModifyRule is in force after 10 s (configurable, `LoadBalancer::set_listener_propagation`): until then requests follow the previous actions and a newly named target group is not yet health checked (a new listener or rule waits it too: see \"ALB listener creation\")",
        source: "ELB guide \"Edit a listener rule for your Application Load Balancer\" (\"Rule updates do not take effect immediately, so requests could be routed using the previous rule configuration for a short time\"), https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-rule.html",
        reading: Reading::Harsher("no figure is documented: a non-zero delay, the registration delay's 10 s"),
    },
    Emulated {
        behaviour: "ALB listener creation",
        emulation: "a listener or rule the emulator sees for the first time (CreateListener, CreateRule) routes nowhere, and health checks none of its target groups, until the listener change delay has passed (the local cloud's start waits for the blue fleet healthy behind it); a deleted one (DeleteListener, DeleteRule) stops at once",
        source: "ELB guide \"Listeners for your Application Load Balancers\" (CreateListener), https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html; \"Edit a listener rule for your Application Load Balancer\" (the delay is documented for updates only), https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-rule.html",
        reading: Reading::Harsher("no delay is documented for creation or deletion: creation waits the update delay; deletion stops routing at once, so requests in flight to it fail rather than drain"),
    },
    Emulated {
        behaviour: "Minimum healthy hosts",
        emulation: "OneAtATime (MOST_CONCURRENCY 1): one at a time, a failure tolerated only on the last instance; HalfAtATime (FLEET_PERCENT 50): half rounded down at a time, half rounded up must succeed; AllAtOnce (HOST_COUNT 0): one success is enough; custom HOST_COUNT/FLEET_PERCENT configs (`Create/Get/Delete/ListDeploymentConfigs`) decide install and AllowTraffic the same way; BlockTraffic batched alike",
        source: "CodeDeploy API reference `MinimumHealthyHosts`, https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_MinimumHealthyHosts.html; user guide \"Working with deployment configurations\", \"Instance health\"",
        reading: Reading::Harsher("a one-instance fleet with its instance failed never succeeds"),
    },
    Emulated {
        behaviour: "Blue/green rollback",
        emulation: "a new deployment (`codeDeployRollback`) with targets and lifecycle events: AllowTraffic on the original instances (must all pass their health checks again), Before/Block/AfterBlockTraffic on the replacement instances (green registered by a part-way AllowTraffic is deregistered and drained), then the replacement ASG is deleted; it takes the LB's time and can fail (not rolled back again)",
        source: "CodeDeploy user guide \"Redeploy and roll back a deployment\", https://docs.aws.amazon.com/codedeploy/latest/userguide/deployments-rollback-and-redeploy.html",
        reading: Reading::Harsher("the fate of the green ASG is reported differently; for a runbook CodeDeploy deletes it"),
    },
    Emulated {
        behaviour: "CreateDeployment validations",
        emulation: "`RevisionDoesNotExistException` (S3 object, version or eTag missing), `DescriptionTooLongException` (> 100 characters), `InvalidAutoScalingGroupException` (copy-ASG group with more than one ASG)",
        source: "CodeDeploy API reference CreateDeployment errors, https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_CreateDeployment.html; user guide \"CodeDeploy quotas\" (description 100)",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "Deployment targets",
        emulation: "`ListDeploymentTargets` answers `DeploymentNotStartedException` while Created/Queued",
        source: "CodeDeploy API reference ListDeploymentTargets, https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_ListDeploymentTargets.html",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "Lifecycle event limit",
        emulation: "AllowTraffic and BlockTraffic fail after 3600 s",
        source: "CodeDeploy user guide \"CodeDeploy quotas\", https://docs.aws.amazon.com/codedeploy/latest/userguide/limits.html",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "CodePipeline job timers",
        emulation: "an invocation that errors or returns without answering leaves the job in progress; a job unanswered for 20 min fails (the timer restarts with each continuation job), an action fails after 24 h",
        source: "CodePipeline user guide \"Invoke an AWS Lambda function in a pipeline\", https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-invoke-lambda-function.html",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "S3 EventBridge events",
        emulation: "`reason` PutObject / CompleteMultipartUpload (multipart ETag) / CopyObject (a `PUT` with `x-amz-copy-source` through the front server); `sequencer` hex, increasing per key, stable across duplicate deliveries",
        source: "S3 user guide \"EventBridge event message structure\", https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html; \"Event message structure\" (sequencer), https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "Lambda timeouts",
        emulation: "each hosted function runs with template.yaml's `Timeout`; past it the invocation fails with `Sandbox.Timedout`, a task failure Step Functions can Retry/Catch",
        source: "Step Functions developer guide \"Handling errors in Step Functions workflows\", https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "Lambda timeouts under a time scale",
        emulation: "an invocation gets its `Timeout` multiplied by the time scale plus up to 30 s of real time for its own work (API round trips, compute), never more than the unscaled `Timeout` (30 s at 0.1: 30 s real; 300 s: 60 s real); the Lambda context's deadline says the same; the `Sandbox.Timedout` message names the template's seconds",
        source: "Lambda developer guide \"Configure Lambda function timeout\", https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html (the timeout bounds the whole invocation in wall-clock time; AWS has no time scale)",
        reading: Reading::Gentler("a function's own work is not sped up by the time scale, so a wholly scaled Timeout fails work AWS completes in time (a false failure, not a harsher AWS); the allowance is gentler only for a function whose waits on the cloud alone outlast its Timeout, which scripts/check-static.py checks from the template instead (failure-handler-budget)"),
    },
    Emulated {
        behaviour: "Lambda unhandled errors",
        emulation: "fault `unknown_once`: the handler runs (its writes happen), then the task fails with `Lambda.Unknown`, which Step Functions uses for unhandled errors such as out-of-memory kills and function timeouts; the state machine must retry it wherever it retries `Sandbox.Timedout` (checked by scripts/check-static.py)",
        source: "Step Functions developer guide \"Handle Lambda service exceptions\", https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html",
        reading: Reading::Harsher("which timeouts or crashes surface as `Lambda.Unknown` rather than `Sandbox.Timedout` / `Runtime.ExitError`"),
    },
    Emulated {
        behaviour: "Step Functions payload limit",
        emulation: "a task result over 262,144 bytes fails the execution uncatchably (`States.DataLimitExceeded`; moto reports it as `States.Runtime`)",
        source: "Step Functions developer guide \"Step Functions service quotas\", https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html; \"Handling errors\" (not matched by `States.ALL`)",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "API rate limits",
        emulation: "token buckets per service and operation answering each service's throttling error: ELBv2 `Describe*` 40 / 10 per s, EC2 non-mutating 100 / 20 per s, StartExecution 800 / 150 per s, Lambda Invoke 100 per s; CodeDeploy, CodePipeline, Auto Scaling 10 / 5 per s",
        source: "ELB user guide \"Request throttling for the ELB API\", https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html; EC2 \"Request throttling for the Amazon EC2 API\", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html; \"Step Functions service quotas\"; \"Lambda quotas\"",
        reading: Reading::Harsher("CodeDeploy, CodePipeline and Auto Scaling document no API rate; ELBv2 write and other Step Functions rates not checked"),
    },
    Emulated {
        behaviour: "Lambda on-failure destination",
        emulation: "an S3 event the trigger still fails after its 2 retries goes to the RejectedUploads queue as Lambda's invocation record (`RetriesExhausted`, `requestPayload`, `responsePayload`); CodePipeline invokes its function asynchronously, with the function's `EventInvokeConfig` from template.yaml: `MaximumRetryAttempts` retries (1 min, then 2 min), then the record to the `OnFailure` destination if any (`PipelineTriggerFunction` has none)",
        source: "Lambda developer guide \"Capturing records of Lambda asynchronous invocations\", https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html; \"Using AWS Lambda with AWS CodePipeline\", https://docs.aws.amazon.com/lambda/latest/dg/services-codepipeline.html; \"Invoking a Lambda function asynchronously\", https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "Step Functions status-change events",
        emulation: "an execution that ends FAILED, TIMED_OUT or ABORTED emits \"Step Functions Execution Status Change\" to EventBridge (moto emits none)",
        source: "Step Functions developer guide \"Automating Step Functions event delivery with EventBridge\", https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html",
        reading: Reading::Documented,
    },
    Emulated {
        behaviour: "CodeDeploy state-change events",
        emulation: "the local CodeDeploy puts \"CodeDeploy Deployment State-change Notification\" (START, READY, SUCCESS, FAILURE, STOP; no instance-level events) on the default bus as each happens; rules route them to queues the relay delivers up to one poll interval later; fault `lose_event` loses the next `count` of a group's events, and the status loop must finish through its fallback look",
        source: "EventBridge events reference \"AWS CodeDeploy events\" (\"Delivery type: Best effort\"), https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-codedeploy.html",
        reading: Reading::Harsher("how late or how often a best-effort event is lost: delivered late by default, lost on demand (`lose_event`), never required for a deployment to finish"),
    },
    Emulated {
        behaviour: "Step Functions waits under a time scale",
        emulation: "moto runs Wait states, callback timeouts (`TimeoutSeconds(Path)` of a `.waitForTaskToken` task) and Retry intervals in real seconds, so by default the local watcher looks every 1-2 real seconds and waits at most 10 for an event; the transitions benchmark puts Wait states and callback timeouts on the simulated clock (`StepFunctionsWaits::Simulated`: seconds × time scale) and runs the watcher with template.yaml's waits; Retry intervals stay real",
        source: "Step Functions developer guide \"Wait workflow state\", https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html; \"Wait for a Callback with the Task Token\", https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token (AWS has no time scale)",
        reading: Reading::Harsher("by default a wait lasts 1 / time scale times longer against CodeDeploy's clock than on AWS, so the loop sees each change late; only the benchmark, which counts transitions, runs waits on the simulated clock"),
    },
    Emulated {
        behaviour: "Lambda asynchronous retries of relayed events",
        emulation: "the events the relay delivers (S3 uploads to deploy-trigger; CodeDeploy and Step Functions events to the deployment-watcher and the failure handler) are invoked again 1 real second after a function error, twice, then go to the function's on-failure destination if it has one (RejectedUploads for the trigger)",
        source: "Lambda developer guide \"How Lambda handles errors and retries with asynchronous invocation\" (\"a one-minute wait between the first two attempts, and two minutes between the second and third attempts\"), https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html",
        reading: Reading::HarsherThanDocumented("Lambda waits 1 and then 2 minutes before the retries; the relay retries after 1 s, so an error that lasts a few seconds, such as a throttling burst, uses up all three attempts"),
    },
    Emulated {
        behaviour: "Lambda execution environments",
        emulation: "every hosted function runs in the local cloud's one process, its SDK clients built once and shared by all its concurrent invocations; the AWS SDK for Rust keeps one retry quota per service in a process (aws-smithy-runtime's standard retry: 500 tokens, 5 per retry of a throttled call), so every concurrent invocation of every function draws on the same quota",
        source: "Lambda developer guide \"Understanding Lambda function scaling\" (\"For each concurrent request, Lambda provisions a separate instance of your execution environment\"), https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html",
        reading: Reading::HarsherThanDocumented("on AWS each execution environment serves one request at a time with its own retry quota; here, with many deployments throttled at once, the shared quota can run out and a throttled call is then not retried"),
    },
    Emulated {
        behaviour: "Suspended Auto Scaling processes",
        emulation: "with `Launch` suspended a scale-out (SetDesiredCapacity, UpdateAutoScalingGroup DesiredCapacity) sets the desired capacity (DescribeAutoScalingGroups shows it) but launches nothing; with `Terminate` suspended a scale-in terminates nothing; once the process is resumed the group moves to the desired capacity (moto alone launches at once); a desired capacity outside MinSize/MaxSize is a `ValidationError`",
        source: "EC2 Auto Scaling user guide \"How suspended processes affect other processes\", https://docs.aws.amazon.com/autoscaling/ec2/userguide/understand-how-suspending-processes-affects-other-processes.html; \"Suspend and resume Amazon EC2 Auto Scaling processes\", https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-suspend-resume-processes.html",
        reading: Reading::Harsher("whether a MinSize raised above the desired capacity launches while Launch is suspended: passed to moto, which launches"),
    },
];

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The README's emulation table (markdown), one row per [`EMULATED`] entry.
pub fn readme_table() -> String {
    let mut out = String::from(
        "| Behaviour | Emulation | Source | AWS documents it |\n| --- | --- | --- | --- |\n",
    );
    for e in EMULATED {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(e.behaviour),
            cell(e.emulation),
            cell(e.source),
            cell(&e.reading.text())
        ));
    }
    out
}

/// RELIABILITY.md's section on the emulated behaviours.
pub fn reliability_section() -> String {
    let documented = EMULATED
        .iter()
        .filter(|e| e.reading == Reading::Documented)
        .count();
    let gentler = EMULATED
        .iter()
        .filter(|e| matches!(e.reading, Reading::Gentler(_)))
        .count();
    let harsher_than_documented = EMULATED
        .iter()
        .filter(|e| matches!(e.reading, Reading::HarsherThanDocumented(_)))
        .count();
    let mut out = format!(
        "## AWS behaviours the local cloud emulates\n\nWritten by the test run from `local_cloud::emulated::EMULATED` (the README's emulation table is the same table). {} behaviours: {documented} as documented, {} where AWS documents no detail and the harsher reading is taken, {gentler} where AWS documents no detail and the gentler reading is kept on purpose (the row says why greenlight cannot depend on it), {harsher_than_documented} where AWS documents the behaviour and the local cloud is harsher (the row says how).\n\n| Behaviour | Source | AWS documents it |\n| --- | --- | --- |\n",
        EMULATED.len(),
        EMULATED.len() - documented - gentler - harsher_than_documented
    );
    for e in EMULATED {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(e.behaviour),
            cell(e.source),
            cell(&e.reading.text())
        ));
    }
    out
}

/// The text between `<!-- emulated:begin -->` and `<!-- emulated:end -->` in `readme`.
pub fn readme_section(readme: &str) -> Option<&str> {
    let begin = "<!-- emulated:begin -->";
    let start = readme.find(begin)? + begin.len();
    let stop = start + readme[start..].find("<!-- emulated:end -->")?;
    Some(&readme[start..stop])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_emulation_table_is_this_table() {
        let readme = include_str!("../../../README.md");
        let section = readme_section(readme)
            .expect("README.md has an <!-- emulated:begin --> ... <!-- emulated:end --> section");
        assert_eq!(
            section.trim(),
            readme_table().trim(),
            "README.md's emulation table differs from local_cloud::emulated::EMULATED: paste readme_table()'s output between the markers"
        );
    }

    #[test]
    fn every_row_cites_a_source_and_says_how_it_reads() {
        for e in EMULATED {
            assert!(
                e.source.contains("https://"),
                "{}: no source URL",
                e.behaviour
            );
            if let Reading::Harsher(detail)
            | Reading::Gentler(detail)
            | Reading::HarsherThanDocumented(detail) = e.reading
            {
                assert!(
                    !detail.is_empty(),
                    "{}: name the undocumented detail",
                    e.behaviour
                );
            }
        }
        let mut names: Vec<_> = EMULATED.iter().map(|e| e.behaviour).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EMULATED.len(), "behaviours are unique");
    }

    #[test]
    fn the_reliability_section_counts_and_lists_every_behaviour() {
        let s = reliability_section();
        for e in EMULATED {
            assert!(s.contains(e.behaviour), "{}", e.behaviour);
        }
        let harsher = EMULATED
            .iter()
            .filter(|e| matches!(e.reading, Reading::Harsher(_)))
            .count();
        assert!(s.contains(&format!("{harsher} where AWS documents no detail")));
        let gentler = EMULATED
            .iter()
            .filter(|e| matches!(e.reading, Reading::Gentler(_)))
            .count();
        assert!(s.contains(&format!(
            "{gentler} where AWS documents no detail and the gentler reading is kept on purpose"
        )));
        let harsher_than_documented = EMULATED
            .iter()
            .filter(|e| matches!(e.reading, Reading::HarsherThanDocumented(_)))
            .count();
        assert!(s.contains(&format!(
            "{harsher_than_documented} where AWS documents the behaviour and the local cloud is harsher"
        )));
    }
}
