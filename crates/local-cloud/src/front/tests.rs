use super::*;
use crate::clock::TimeScale;
use crate::codedeploy::CodeDeployDeps;
use crate::lambda_host::{BoxFuture, FnFunction, DEFAULT_ACCOUNT_ID};
use crate::moto::MotoServer;
use lambda_runtime::{Context, Diagnostic};
use std::path::PathBuf;
use std::time::Duration;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    map
}

fn signed(service: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
}

// ---------- routing units ----------

#[test]
fn copy_object_requests_name_the_object_they_write() {
    let copy = headers(&[("x-amz-copy-source", "/b/artifacts/app/v1.zip")]);
    assert_eq!(
        copy_object_target(
            &Method::PUT,
            "/b/artifacts/app/copied%20v3%2B1.zip",
            None,
            &copy
        ),
        Some(("b".into(), "artifacts/app/copied v3+1.zip".into()))
    );
    assert_eq!(
        copy_object_target(&Method::PUT, "/b/k.zip", Some("x-id=CopyObject"), &copy),
        Some(("b".into(), "k.zip".into()))
    );
    // UploadPartCopy writes a part, not an object.
    assert_eq!(
        copy_object_target(
            &Method::PUT,
            "/b/k.zip",
            Some("partNumber=1&uploadId=abc"),
            &copy
        ),
        None
    );
    // PutObject (no copy source), other methods, a bucket-level request.
    assert_eq!(
        copy_object_target(&Method::PUT, "/b/k.zip", None, &HeaderMap::new()),
        None
    );
    assert_eq!(
        copy_object_target(&Method::POST, "/b/k.zip", None, &copy),
        None
    );
    assert_eq!(copy_object_target(&Method::PUT, "/b", None, &copy), None);
    assert_eq!(copy_object_target(&Method::PUT, "/b/", None, &copy), None);
}

#[test]
fn lambda_invocations_are_recognized_by_path_and_service() {
    let h = headers(&[("authorization", &signed("lambda"))]);
    let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Agreenlight-deploy-trigger/invocations";
    assert_eq!(
        classify(&Method::POST, path, None, &h, b"{}"),
        Route::LambdaInvoke {
            function: "arn:aws:lambda:us-east-1:123456789012:function:greenlight-deploy-trigger"
                .into()
        }
    );
    assert_eq!(
        classify(
            &Method::POST,
            "/2015-03-31/functions/f/invocations",
            Some("Qualifier=%24LATEST"),
            &h,
            b""
        ),
        Route::LambdaInvoke {
            function: "f".into()
        }
    );
    // The function API is the front server's too (lambda_api) ...
    assert_eq!(
        classify(&Method::GET, "/2015-03-31/functions/f", None, &h, b""),
        Route::LambdaApi {
            call: lambda_api::LambdaCall::GetFunction {
                function: "f".into()
            }
        }
    );
    assert_eq!(
        classify(&Method::GET, "/2015-03-31/functions/", None, &h, b""),
        Route::LambdaApi {
            call: lambda_api::LambdaCall::ListFunctions
        }
    );
    assert_eq!(
        classify(&Method::POST, "/2015-03-31/functions/", None, &h, b""),
        Route::LambdaApi {
            call: lambda_api::LambdaCall::NotEmulated {
                operation: "CreateFunction".into()
            }
        }
    );
    // ... the other Lambda APIs go to moto.
    assert_eq!(
        classify(
            &Method::GET,
            "/2015-03-31/event-source-mappings/",
            None,
            &h,
            b""
        ),
        Route::Moto
    );
    // The same path signed for another service is not an invocation.
    let s3 = headers(&[("authorization", &signed("s3"))]);
    assert_eq!(classify(&Method::POST, path, None, &s3, b""), Route::Moto);
}

#[test]
fn json_services_are_routed_by_target() {
    let h = headers(&[
        ("authorization", &signed("codedeploy")),
        ("x-amz-target", "CodeDeploy_20141006.CreateDeployment"),
    ]);
    assert_eq!(
        classify(&Method::POST, "/", None, &h, b"{}"),
        Route::CodeDeploy {
            operation: "CreateDeployment".into()
        }
    );
    for (op, route) in [
        ("PutJobSuccessResult", true),
        ("PutJobFailureResult", true),
        ("GetJobDetails", true),
        ("AcknowledgeJob", true),
        ("GetPipeline", false),
    ] {
        let target = format!("CodePipeline_20150709.{op}");
        let h = headers(&[
            ("authorization", &signed("codepipeline")),
            ("x-amz-target", &target),
        ]);
        let expected = if route {
            Route::CodePipelineJob {
                operation: op.into(),
            }
        } else {
            Route::Moto
        };
        assert_eq!(classify(&Method::POST, "/", None, &h, b"{}"), expected);
    }
}

#[test]
fn query_services_are_routed_by_action() {
    let form = "application/x-www-form-urlencoded; charset=utf-8";
    let elb = headers(&[
        ("authorization", &signed("elasticloadbalancing")),
        ("content-type", form),
    ]);
    assert_eq!(
        classify(
            &Method::POST,
            "/",
            None,
            &elb,
            b"Action=DescribeTargetHealth&Version=2015-12-01&TargetGroupArn=x"
        ),
        Route::DescribeTargetHealth
    );
    for action in ELB_WRITE_ACTIONS {
        let body = format!("Action={action}&Version=2015-12-01");
        assert_eq!(
            classify(&Method::POST, "/", None, &elb, body.as_bytes()),
            Route::ElbWrite {
                action: action.to_string()
            }
        );
    }
    assert_eq!(
        classify(
            &Method::POST,
            "/",
            None,
            &elb,
            b"Action=DescribeTargetGroups"
        ),
        Route::Moto
    );
    let ec2 = headers(&[("authorization", &signed("ec2")), ("content-type", form)]);
    assert_eq!(
        classify(
            &Method::POST,
            "/",
            None,
            &ec2,
            b"Action=DescribeInstances&Version=2016-11-15"
        ),
        Route::DescribeInstances
    );
    assert_eq!(
        classify(
            &Method::GET,
            "/",
            Some("Action=DescribeInstances"),
            &ec2,
            b""
        ),
        Route::DescribeInstances
    );
    assert_eq!(
        classify(&Method::POST, "/", None, &ec2, b"Action=RunInstances"),
        Route::Moto
    );
    // Unsigned and internal requests.
    assert_eq!(
        classify(
            &Method::GET,
            "/_greenlight/health",
            None,
            &HeaderMap::new(),
            b""
        ),
        Route::Internal
    );
    assert_eq!(
        classify(&Method::GET, "/bucket/key", None, &HeaderMap::new(), b""),
        Route::Moto
    );
}

#[test]
fn invoke_paths_are_url_decoded() {
    // The invoke target of a POST, as `lambda_api::lambda_request` routes it.
    let invoke_target = |path: &str| match lambda_api::lambda_request(&Method::POST, path, None) {
        Some(lambda_api::LambdaRequest::Invoke { function }) => Some(function),
        _ => None,
    };
    assert_eq!(
        invoke_target("/2015-03-31/functions/my-fn/invocations").as_deref(),
        Some("my-fn")
    );
    assert_eq!(
        invoke_target("/2015-03-31/functions/123456789012%3Afunction%3Amy-fn/invocations")
            .as_deref(),
        Some("123456789012:function:my-fn")
    );
    assert_eq!(invoke_target("/2015-03-31/functions/a/b/invocations"), None);
    assert_eq!(invoke_target("/2015-03-31/functions/my-fn"), None);
}

// ---------- the local cloud, for real: moto + front server ----------

struct Cloud {
    faults: Arc<crate::faults::Faults>,
    s3_events: Arc<crate::relay::S3EventState>,
    front: Front,
    _moto: MotoServer,
    sdk: aws_config::SdkConfig,
    lambda: Arc<LambdaHost>,
    pipeline: Arc<CodePipelineJobs>,
    lb: Arc<LoadBalancer>,
    _work: PathBuf,
}

fn venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv")
}

async fn cloud(name: &str) -> Cloud {
    let mut front = Front::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let work = std::env::temp_dir().join(format!("greenlight-front-test-{name}-{}", front.port()));
    std::fs::create_dir_all(&work).unwrap();
    let moto = MotoServer::start_logging_to(&venv(), front.port(), &work.join("moto.log"), 1.0)
        .await
        .unwrap();
    let sdk = sdk_config(&front.endpoint()).await;
    let moto_sdk = sdk_config(&moto.endpoint()).await;
    let scale = TimeScale::new(0.01);
    let faults = Arc::new(crate::faults::Faults::default());
    let fleet = Fleet::on_reserved_port(scale, work.join("fleet")).unwrap();
    let lb = LoadBalancer::new(
        fleet.clone(),
        scale,
        aws_sdk_elasticloadbalancingv2::Client::new(&moto_sdk),
    );
    let codedeploy = CodeDeploy::new(CodeDeployDeps {
        fleet: fleet.clone(),
        lb: lb.clone(),
        scale,
        sdk: sdk.clone(),
        account_id: DEFAULT_ACCOUNT_ID.into(),
        region: "us-east-1".into(),
        faults: faults.clone(),
    });
    let lambda = LambdaHost::empty(DEFAULT_ACCOUNT_ID, "us-east-1");
    let pipeline =
        CodePipelineJobs::with_continuation_delay(lambda.clone(), scale, Duration::from_secs(10));
    let s3_events = Arc::new(crate::relay::S3EventState::default());
    front.start(Arc::new(Services {
        held_capacity: Default::default(),
        moto_endpoint: moto.endpoint(),
        lambda: lambda.clone(),
        codedeploy,
        lb: lb.clone(),
        fleet,
        pipeline: pipeline.clone(),
        faults: faults.clone(),
        s3_events: s3_events.clone(),
        page: None,
    }));
    Cloud {
        faults,
        s3_events,
        front,
        _moto: moto,
        sdk,
        lambda,
        pipeline,
        lb,
        _work: work,
    }
}

/// `{"n": k}` → `{"n": k + 1}`; `n == 0` fails with `GroupBusy`.
fn adder(
    calls: Arc<std::sync::atomic::AtomicUsize>,
) -> Arc<dyn crate::lambda_host::HostedFunction> {
    Arc::new(FnFunction(move |payload: Value, _: Context| {
        let calls = calls.clone();
        Box::pin(async move {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let n = payload["n"].as_i64().ok_or_else(|| Diagnostic {
                error_type: "InvalidInput".into(),
                error_message: format!("no n in {payload}"),
            })?;
            if n == 0 {
                return Err(Diagnostic {
                    error_type: "GroupBusy".into(),
                    error_message: "the group has an active deployment".into(),
                });
            }
            Ok(json!({ "n": n + 1 }))
        }) as BoxFuture<'static, _>
    }))
}

async fn raw(
    front: &Front,
    method: &str,
    path: &str,
    hdrs: &[(&str, &str)],
    body: &str,
) -> (u16, HeaderMap, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{}{path}", front.endpoint()));
    for (k, v) in hdrs {
        builder = builder.header(*k, *v);
    }
    let response = client
        .request(
            builder
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn lambda_invoke_has_aws_wire_shape() {
    let cloud = cloud("lambda").await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    cloud.lambda.register("adder", adder(calls.clone()));
    let auth = signed("lambda");
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aadder";

    let (status, headers, body) = raw(
        &cloud.front,
        "POST",
        &format!("/2015-03-31/functions/{arn}/invocations"),
        &h,
        r#"{"n":41}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.get("x-amz-function-error").is_none());
    assert_eq!(headers["x-amz-executed-version"], "$LATEST");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"n": 42})
    );

    let (status, headers, body) = raw(
        &cloud.front,
        "POST",
        "/2015-03-31/functions/adder/invocations",
        &h,
        r#"{"n":0}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"errorType": "GroupBusy", "errorMessage": "the group has an active deployment"})
    );

    let (status, headers, body) = raw(
        &cloud.front,
        "POST",
        "/2015-03-31/functions/missing/invocations",
        &h,
        "{}",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(headers["x-amzn-errortype"], "ResourceNotFoundException");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["Message"],
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing"
    );

    let (status, headers, _) = raw(
        &cloud.front,
        "POST",
        "/2015-03-31/functions/adder/invocations",
        &h,
        "{not json",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        headers["x-amzn-errortype"],
        "InvalidRequestContentException"
    );

    let event = [
        ("authorization", auth.as_str()),
        ("x-amz-invocation-type", "Event"),
    ];
    let (status, _, _) = raw(
        &cloud.front,
        "POST",
        "/2015-03-31/functions/adder/invocations",
        &event,
        r#"{"n":1}"#,
    )
    .await;
    assert_eq!(status, 202);

    let (status, _, body) = raw(
        &cloud.front,
        "GET",
        "/_greenlight/lambda/functions",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["functions"][0]["name"],
        "adder"
    );

    // The function API: ListFunctions / GetFunction / GetFunctionConfiguration
    // answer the hosted functions, unknown ones are AWS's 404, and what is not
    // emulated says so (never moto's empty answers).
    let signed_only = [("authorization", auth.as_str())];
    let (status, headers, body) = raw(
        &cloud.front,
        "GET",
        "/2015-03-31/functions/",
        &signed_only,
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert!(headers.contains_key("x-amzn-requestid"));
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["Functions"].as_array().unwrap().len(), 1);
    assert_eq!(listed["Functions"][0]["FunctionName"], "adder");
    assert_eq!(listed["Functions"][0]["State"], "Active");

    let (status, _, body) = raw(
        &cloud.front,
        "GET",
        &format!("/2015-03-31/functions/{arn}"),
        &signed_only,
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        got["Configuration"]["FunctionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:adder"
    );
    assert_eq!(got["Configuration"], listed["Functions"][0]);
    assert_eq!(got["Code"]["RepositoryType"], "S3");

    let (status, _, body) = raw(
        &cloud.front,
        "GET",
        "/2015-03-31/functions/adder/configuration",
        &signed_only,
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        listed["Functions"][0]
    );

    let (status, headers, body) = raw(
        &cloud.front,
        "GET",
        "/2015-03-31/functions/missing",
        &signed_only,
        "",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(headers["x-amzn-errortype"], "ResourceNotFoundException");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"Type": "User", "Message": "Function not found: arn:aws:lambda:us-east-1:123456789012:function:missing"})
    );

    let (status, headers, body) = raw(
        &cloud.front,
        "DELETE",
        "/2015-03-31/functions/adder",
        &signed_only,
        "",
    )
    .await;
    assert_eq!(status, 501);
    assert_eq!(headers["x-amzn-errortype"], "NotImplemented");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["Message"]
            .as_str()
            .unwrap()
            .starts_with("DeleteFunction is not emulated"),
        "{body}"
    );
    // The function is still there.
    assert_eq!(cloud.lambda.resolve("adder").as_deref(), Some("adder"));
}

#[tokio::test]
async fn s3_and_a_step_functions_execution_calling_a_hosted_function() {
    let cloud = cloud("sfn").await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    cloud.lambda.register("adder", adder(calls.clone()));

    // S3 through the front server, default addressing (path style by itself on 127.0.0.1).
    let s3 = aws_sdk_s3::Client::new(&cloud.sdk);
    s3.create_bucket()
        .bucket("front-test")
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("front-test")
        .key("artifacts/app/v1.zip")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"bundle bytes",
        ))
        .send()
        .await
        .unwrap();
    let object = s3
        .get_object()
        .bucket("front-test")
        .key("artifacts/app/v1.zip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        object.body.collect().await.unwrap().into_bytes().as_ref(),
        b"bundle bytes"
    );
    let head = s3
        .head_object()
        .bucket("front-test")
        .key("artifacts/app/v1.zip")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(12));

    // A state machine whose tasks call the hosted function through the front
    // server (moto's MOTO_PORT), with Retry and Catch on the function's error name.
    let arn = cloud.lambda.function_arn("adder");
    let definition = json!({
        "StartAt": "Add",
        "States": {
            "Add": {
                "Type": "Task", "Resource": arn,
                "Parameters": {"n.$": "$.n"},
                "ResultPath": "$.added", "Next": "Busy"
            },
            "Busy": {
                "Type": "Task", "Resource": arn,
                "Parameters": {"n": 0},
                "Retry": [{"ErrorEquals": ["GroupBusy"], "IntervalSeconds": 1, "MaxAttempts": 1, "BackoffRate": 1.0}],
                "Catch": [{"ErrorEquals": ["GroupBusy"], "ResultPath": "$.error", "Next": "Done"}],
                "End": true
            },
            "Done": {"Type": "Succeed"}
        }
    });
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let machine = sfn
        .create_state_machine()
        .name("front-test")
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/front-test")
        .send()
        .await
        .unwrap();
    let execution = sfn
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name("run-1")
        .input(r#"{"n": 1}"#)
        .send()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let described = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(execution.execution_arn())
            .send()
            .await
            .unwrap();
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running
            || tokio::time::Instant::now() > deadline
        {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        described.status(),
        &aws_sdk_sfn::types::ExecutionStatus::Succeeded,
        "{described:?}"
    );
    let output: Value = serde_json::from_str(described.output().unwrap()).unwrap();
    assert_eq!(output["added"], json!({"n": 2}));
    assert_eq!(output["error"]["Error"], "GroupBusy");
    let cause: Value = serde_json::from_str(output["error"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["errorMessage"], "the group has an active deployment");
    // Add once, Busy once plus one retry.
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn ec2_answers_carry_loopback_addresses_only() {
    let cloud = cloud("ec2").await;
    let ec2 = aws_sdk_ec2::Client::new(&cloud.sdk);
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(2)
        .max_count(2)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .send()
        .await
        .unwrap();
    assert_eq!(run.instances().len(), 2);
    let described = ec2.describe_instances().send().await.unwrap();
    let instances: Vec<_> = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .collect();
    assert_eq!(instances.len(), 2);
    for instance in instances {
        let ip = instance.private_ip_address().unwrap();
        assert!(ip.starts_with("127."), "{ip}");
        assert_eq!(instance.public_ip_address(), Some(ip));
        for nic in instance.network_interfaces() {
            assert!(nic.private_ip_address().unwrap().starts_with("127."));
        }
        assert!(instance.private_dns_name().unwrap().starts_with("ip-127-"));
    }
}

#[tokio::test]
async fn codepipeline_jobs_through_the_sdk() {
    let cloud = cloud("codepipeline").await;
    // A function that answers its job with the real SDK client, through the front server.
    let client = aws_sdk_codepipeline::Client::new(&cloud.sdk);
    let seen: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let (c, s) = (client.clone(), seen.clone());
    cloud.lambda.register(
        "pipeline-fn",
        Arc::new(FnFunction(move |payload: Value, _: Context| {
            let (client, seen) = (c.clone(), s.clone());
            Box::pin(async move {
                seen.lock().unwrap().push(payload.clone());
                let job = &payload["CodePipeline.job"];
                let id = job["id"].as_str().unwrap().to_string();
                if job["data"]["continuationToken"].is_null() {
                    client
                        .put_job_success_result()
                        .job_id(&id)
                        .continuation_token("step-2")
                        .send()
                        .await
                        .unwrap();
                } else {
                    client
                        .put_job_failure_result()
                        .job_id(&id)
                        .failure_details(
                            aws_sdk_codepipeline::types::FailureDetails::builder()
                                .r#type(aws_sdk_codepipeline::types::FailureType::JobFailed)
                                .message("deployment d-1 failed: ValidationFailed")
                                .build()
                                .unwrap(),
                        )
                        .send()
                        .await
                        .unwrap();
                    let again = client
                        .put_job_success_result()
                        .job_id(&id)
                        .send()
                        .await
                        .unwrap_err();
                    assert!(
                        again
                            .as_service_error()
                            .unwrap()
                            .is_invalid_job_state_exception(),
                        "{again:?}"
                    );
                }
                Ok(json!({}))
            }) as BoxFuture<'static, _>
        })),
    );
    let (status, _, body) = raw(
        &cloud.front,
        "POST",
        "/_greenlight/codepipeline/jobs",
        &[("content-type", "application/json")],
        r#"{"bucket":"b","key":"app/v2.zip","functionName":"pipeline-fn"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let job_id = serde_json::from_str::<Value>(&body).unwrap()["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    cloud
        .pipeline
        .wait_for_outcome(&job_id, Duration::from_secs(20))
        .await
        .unwrap();
    let (status, _, body) = raw(
        &cloud.front,
        "GET",
        &format!("/_greenlight/codepipeline/jobs/{job_id}"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["action"]["status"], "Failed", "{view}");
    assert_eq!(
        view["action"]["failureDetails"]["message"],
        "deployment d-1 failed: ValidationFailed"
    );
    assert_eq!(view["action"]["jobIds"].as_array().unwrap().len(), 2);
    assert_eq!(
        seen.lock().unwrap()[1]["CodePipeline.job"]["data"]["continuationToken"],
        "step-2"
    );

    let missing = client
        .get_job_details()
        .job_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert!(missing
        .as_service_error()
        .unwrap()
        .is_job_not_found_exception());
    let details = client
        .get_job_details()
        .job_id(&job_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        details
            .job_details()
            .unwrap()
            .data()
            .unwrap()
            .input_artifacts()[0]
            .location()
            .unwrap()
            .s3_location()
            .unwrap()
            .object_key(),
        "app/v2.zip"
    );
    let (status, _, _) = raw(
        &cloud.front,
        "GET",
        "/_greenlight/codepipeline/jobs/nope",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn eventbridge_rules_reach_hosted_functions_through_sqs() {
    use crate::relay::{Relay, RelayConfig, RelayRoute};
    let cloud = cloud("relay").await;
    let received: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let r = received.clone();
    cloud.lambda.register(
        "sink",
        Arc::new(FnFunction(move |payload: Value, _: Context| {
            let r = r.clone();
            Box::pin(async move {
                r.lock().unwrap().push(payload);
                Ok(json!({}))
            }) as BoxFuture<'static, _>
        })),
    );
    cloud.lambda.register(
        "always-fails",
        Arc::new(FnFunction(|_: Value, _: Context| {
            Box::pin(async {
                Err(Diagnostic {
                    error_type: "Boom".into(),
                    error_message: "always".into(),
                })
            }) as BoxFuture<'static, _>
        })),
    );
    let sqs = aws_sdk_sqs::Client::new(&cloud.sdk);
    let events = aws_sdk_eventbridge::Client::new(&cloud.sdk);
    let s3 = aws_sdk_s3::Client::new(&cloud.sdk);

    // The failing function's on-failure destination (as template.yaml's
    // OnFailure → RejectedUploads for the trigger).
    let destination = sqs
        .create_queue()
        .queue_name("on-failure")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let mut routes = Vec::new();
    for (queue, pattern, function) in [
        (
            "uploads",
            json!({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": ["relay-bucket"]}, "object": {"key": [{"prefix": "artifacts/"}]}}}),
            "sink",
        ),
        ("failures", json!({"source": ["test.app"]}), "always-fails"),
    ] {
        let url = sqs
            .create_queue()
            .queue_name(queue)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        assert!(
            url.contains(&format!(":{}/", cloud.front.port())),
            "queue URL points at the front server: {url}"
        );
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        events
            .put_rule()
            .name(queue)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(queue)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("q")
                    .arn(arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        routes.push(RelayRoute {
            queue_url: url,
            function_name: function.into(),
            on_failure_queue: (function == "always-fails").then(|| destination.clone()),
        });
    }
    let relay = Relay::start(
        sqs.clone(),
        cloud.lambda.clone(),
        routes,
        RelayConfig {
            max_receive_count: 2,
            retry_delay: Duration::ZERO,
            s3_events: cloud.s3_events.clone(),
            ..RelayConfig::default()
        },
    );

    s3.create_bucket()
        .bucket("relay-bucket")
        .send()
        .await
        .unwrap();
    s3.put_bucket_notification_configuration()
        .bucket("relay-bucket")
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .event_bridge_configuration(
                    aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    for key in [
        "artifacts/app/v1.zip",
        "other/ignored.txt",
        "artifacts/app/v2.zip",
    ] {
        s3.put_object()
            .bucket("relay-bucket")
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"zip"))
            .send()
            .await
            .unwrap();
    }
    // CopyObject, as the AWS CLI's `aws s3 cp s3://b/k s3://b/k2` sends it
    // (PUT with x-amz-copy-source), to a key that needs percent-encoding.
    s3.copy_object()
        .bucket("relay-bucket")
        .key("artifacts/app/copied v3+1.zip")
        .copy_source("relay-bucket/artifacts/app/v1.zip")
        .send()
        .await
        .unwrap();
    events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("test.app")
                .detail_type("Test")
                .detail(r#"{"x":1}"#)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while (received.lock().unwrap().len() < 3 || relay.dead_letters().is_empty())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // nothing else arrives
    let got = received.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        3,
        "the rule's pattern filters (prefix): {got:#?}"
    );
    let keys: Vec<&str> = got
        .iter()
        .map(|e| e["detail"]["object"]["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"artifacts/app/v1.zip")
            && keys.contains(&"artifacts/app/v2.zip")
            && keys.contains(&"artifacts/app/copied v3+1.zip"),
        "{keys:?}"
    );
    for event in &got {
        let copied = event["detail"]["object"]["key"] == "artifacts/app/copied v3+1.zip";
        assert_eq!(
            event["detail"]["reason"],
            if copied { "CopyObject" } else { "PutObject" },
            "{event}"
        );
        let object = &event["detail"]["object"];
        assert!(
            object["etag"].is_string() && object.get("eTag").is_none(),
            "{event}"
        );
        assert!(object.get("version-id").is_none());
        assert!(event["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(event["detail-type"], "Object Created");
    }
    assert_ne!(got[0]["id"], got[1]["id"]);
    // The given-up event went to the on-failure destination as Lambda's invocation record.
    let records = sqs
        .receive_message()
        .queue_url(&destination)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let records: Vec<Value> = records
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0]["requestContext"]["condition"],
        "RetriesExhausted"
    );
    assert_eq!(records[0]["requestPayload"]["source"], "test.app");
    assert_eq!(records[0]["responsePayload"]["errorType"], "Boom");
    let dead = relay.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].error_type, "Boom");
    assert_eq!(dead[0].receive_count, 2);
    assert_eq!(relay.delivered(), 3);
    assert_eq!(relay.failed_attempts(), 2);
    relay.stop().await;
}

#[tokio::test]
async fn elbv2_target_health_comes_from_the_emulated_load_balancer() {
    use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};
    let cloud = cloud("elb").await;
    let ec2 = aws_sdk_ec2::Client::new(&cloud.sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cloud.sdk);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let instance_id = run.instances()[0].instance_id().unwrap().to_string();
    // CreateTargetGroup goes to moto, then the load balancer re-reads moto.
    let tg = elb
        .create_target_group()
        .name("front-test")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(&vpc_id)
        .health_check_interval_seconds(5)
        .health_check_timeout_seconds(2)
        .healthy_threshold_count(2)
        .unhealthy_threshold_count(2)
        .send()
        .await
        .unwrap();
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    let target = TargetDescription::builder()
        .id(&instance_id)
        .port(8080)
        .build();
    elb.register_targets()
        .target_group_arn(&tg_arn)
        .targets(target.clone())
        .send()
        .await
        .unwrap();
    // The emulated load balancer knows the registration before the call returns.
    assert_eq!(cloud_lb_targets(&cloud, &tg_arn), vec![instance_id.clone()]);
    // No listener forwards to the group yet: not health checked, `unused`
    // with `Target.NotInUse` (ALB health-checks only groups in use).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let not_in_use = loop {
        let health = elb
            .describe_target_health()
            .target_group_arn(&tg_arn)
            .send()
            .await
            .unwrap();
        let h = health.target_health_descriptions()[0]
            .target_health()
            .cloned()
            .unwrap();
        if h.state() == Some(&TargetHealthStateEnum::Unused)
            || tokio::time::Instant::now() > deadline
        {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(not_in_use.state(), Some(&TargetHealthStateEnum::Unused));
    assert_eq!(
        not_in_use.reason().map(|r| r.as_str()),
        Some("Target.NotInUse")
    );
    // A load balancer whose listener forwards to the group: now it is checked.
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.0.1.0/24")
        .availability_zone("us-east-1a")
        .send()
        .await
        .unwrap();
    let subnet_b = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.0.2.0/24")
        .availability_zone("us-east-1b")
        .send()
        .await
        .unwrap();
    let lb = elb
        .create_load_balancer()
        .name("front-test-alb")
        .subnets(subnet.subnet().unwrap().subnet_id().unwrap())
        .subnets(subnet_b.subnet().unwrap().subnet_id().unwrap())
        .send()
        .await
        .unwrap();
    elb.create_listener()
        .load_balancer_arn(lb.load_balancers()[0].load_balancer_arn().unwrap())
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&tg_arn)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // Nothing listens on the instance's loopback address: the real health
    // checks fail it (interval 5 s × scale 0.01).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let state = loop {
        let health = elb
            .describe_target_health()
            .target_group_arn(&tg_arn)
            .send()
            .await
            .unwrap();
        let description = health.target_health_descriptions()[0].clone();
        assert_eq!(
            description.target().unwrap().id(),
            Some(instance_id.as_str())
        );
        let state = description
            .target_health()
            .unwrap()
            .state()
            .unwrap()
            .clone();
        if state == TargetHealthStateEnum::Unhealthy || tokio::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state, TargetHealthStateEnum::Unhealthy);
    elb.deregister_targets()
        .target_group_arn(&tg_arn)
        .targets(target)
        .send()
        .await
        .unwrap();
    let health = elb
        .describe_target_health()
        .target_group_arn(&tg_arn)
        .send()
        .await
        .unwrap();
    let states: Vec<_> = health
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target_health().and_then(|h| h.state()).cloned())
        .collect();
    assert!(
        states.is_empty() || states == vec![TargetHealthStateEnum::Draining],
        "deregistered target: {states:?}"
    );
}

fn cloud_lb_targets(cloud: &Cloud, tg_arn: &str) -> Vec<String> {
    cloud
        .lb
        .target_health(tg_arn)
        .into_iter()
        .map(|t| t.instance_id)
        .collect()
}

// ---------- the fault injector, driven through its API with real SDK clients ----------

async fn add_fault(cloud: &Cloud, fault: Value) -> Value {
    let (status, _, body) = raw(
        &cloud.front,
        "POST",
        "/_greenlight/faults",
        &[("content-type", "application/json")],
        &fault.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["fault"].clone()
}

async fn fault_counts(cloud: &Cloud) -> Value {
    let (status, _, body) = raw(&cloud.front, "GET", "/_greenlight/faults", &[], "").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn fired(list: &Value, id: &Value) -> u64 {
    list["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| &f["id"] == id)
        .unwrap()["fired"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn injected_faults_reach_real_sdk_clients_in_each_wire_shape() {
    let cloud = cloud("faults").await;
    // greenlight's functions sign with their own key: faults apply to them.
    let user = crate::front::sdk_config_as(&cloud.front.endpoint(), "test").await;
    let codedeploy = aws_sdk_codedeploy::Client::new(&user);

    // Throttled beyond the SDK's retries: the SDK's throttling error code, and
    // the fault fired once per attempt (standard retry mode: 3 attempts).
    let throttle = add_fault(
        &cloud,
        json!({"kind": "throttle", "service": "codedeploy", "operation": "ListApplications", "count": 10}),
    )
    .await;
    let err = codedeploy.list_applications().send().await.unwrap_err();
    let service_error = err.as_service_error().expect("a service error");
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(service_error),
        Some("ThrottlingException"),
        "{err:?}"
    );
    assert_eq!(fired(&fault_counts(&cloud).await, &throttle["id"]), 3);
    // The local cloud's own calls are exempt.
    aws_sdk_codedeploy::Client::new(&cloud.sdk)
        .list_applications()
        .send()
        .await
        .unwrap();

    // Throttled once: the SDK's retry absorbs it (ELBv2, query protocol).
    let elb_throttle = add_fault(
        &cloud,
        json!({"kind": "throttle", "service": "elasticloadbalancing", "operation": "DescribeTargetGroups", "count": 1}),
    )
    .await;
    aws_sdk_elasticloadbalancingv2::Client::new(&user)
        .describe_target_groups()
        .send()
        .await
        .unwrap();
    assert_eq!(fired(&fault_counts(&cloud).await, &elb_throttle["id"]), 1);

    // EC2's RequestLimitExceeded, beyond the retries.
    add_fault(
        &cloud,
        json!({"kind": "throttle", "service": "ec2", "operation": "DescribeInstances", "count": 3}),
    )
    .await;
    let err = aws_sdk_ec2::Client::new(&user)
        .describe_instances()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&err),
        Some("RequestLimitExceeded"),
        "{err:?}"
    );

    // A 503 from S3 once (retried), then 500s beyond the retries.
    add_fault(
        &cloud,
        json!({"kind": "error5xx", "service": "s3", "operation": "ListBuckets", "count": 1, "status": 503}),
    )
    .await;
    let s3 = aws_sdk_s3::Client::new(&user);
    s3.list_buckets().send().await.unwrap();
    add_fault(
        &cloud,
        json!({"kind": "error5xx", "service": "s3", "operation": "ListBuckets", "count": 3}),
    )
    .await;
    let err = s3.list_buckets().send().await.unwrap_err();
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&err),
        Some("InternalError"),
        "{err:?}"
    );

    // Lambda Invoke: TooManyRequestsException (429) beyond the retries.
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    cloud.lambda.register("adder", adder(calls.clone()));
    add_fault(
        &cloud,
        json!({"kind": "throttle", "service": "lambda", "operation": "Invoke", "resource": "adder", "count": 3}),
    )
    .await;
    let err = invoke_as_a_user(&cloud, "adder").await.unwrap_err();
    assert_eq!(err, "TooManyRequestsException");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);

    // A hang outlasts a client's attempt timeout; the retry gets through.
    // The timeout leaves the retry room for moto under load (a 500 ms attempt
    // timed the retry out too on a busy machine); the hang outlasts it twice.
    let attempt_timeout = Duration::from_millis(2500);
    let hang = add_fault(
        &cloud,
        json!({"kind": "hang", "service": "states", "operation": "ListStateMachines", "count": 1, "hangSeconds": 6}),
    )
    .await;
    let impatient = aws_sdk_sfn::config::Builder::from(&user)
        .timeout_config(
            aws_smithy_types::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build();
    let started = tokio::time::Instant::now();
    aws_sdk_sfn::Client::from_conf(impatient)
        .list_state_machines()
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= attempt_timeout);
    assert_eq!(fired(&fault_counts(&cloud).await, &hang["id"]), 1);

    // Clearing: everything passes again; a bad fault is refused with the reason.
    let (status, _, body) = raw(&cloud.front, "DELETE", "/_greenlight/faults", &[], "").await;
    assert_eq!(status, 200, "{body}");
    codedeploy.list_applications().send().await.unwrap();
    let (status, _, body) = raw(
        &cloud.front,
        "POST",
        "/_greenlight/faults",
        &[("content-type", "application/json")],
        r#"{"kind": "throttle", "count": 1}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("service"), "{body}");
    let (status, _, body) = raw(
        &cloud.front,
        "POST",
        "/_greenlight/faults",
        &[("content-type", "application/json")],
        r#"{"kind": "kill_instance", "resource": "i-nope"}"#,
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

/// Invokes a function with Lambda's wire protocol, signed as a user (the
/// project does not depend on aws-sdk-lambda), attempting three times as the
/// SDK's standard retry mode does: the error code a caller sees last.
async fn invoke_as_a_user(cloud: &Cloud, function: &str) -> Result<Value, String> {
    let auth = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00";
    let mut last = String::new();
    for _ in 0..3 {
        let (status, headers, body) = raw(
            &cloud.front,
            "POST",
            &format!("/2015-03-31/functions/{function}/invocations"),
            &[("authorization", auth)],
            "{\"n\": 1}",
        )
        .await;
        if status == 200 {
            return Ok(serde_json::from_str(&body).unwrap());
        }
        assert_eq!(status, 429, "{body}");
        last = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
    }
    Err(last)
}

#[tokio::test]
async fn rate_limits_throttle_a_burst_and_the_sdk_retries_absorb_them() {
    let cloud = cloud("rates").await;
    let user = crate::front::sdk_config_as(&cloud.front.endpoint(), "test").await;
    // Five attempts, not the default three: the standard retry's backoff is
    // random (0-1 s, then 0-2 s), and two short draws in a row can land
    // inside the same empty second of the bucket; with five the odds of
    // that are negligible, and the claim tested (throttled calls succeed
    // on retry) stays the same.
    let codedeploy = aws_sdk_codedeploy::Client::from_conf(
        aws_sdk_codedeploy::config::Builder::from(&user)
            .retry_config(
                aws_sdk_codedeploy::config::retry::RetryConfig::standard().with_max_attempts(5),
            )
            .build(),
    );
    // CodeDeploy: 10 calls of burst, 5 per second after: 20 calls in a row
    // are throttled beyond the burst and all succeed after the SDK's retries.
    for _ in 0..20 {
        codedeploy.list_applications().send().await.unwrap();
    }
    let counts = fault_counts(&cloud).await;
    assert_eq!(counts["rateLimits"], "aws");
    assert!(
        counts["throttledByRateLimits"]["codedeploy:ListApplications"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{counts}"
    );
    // Off: no throttling at all.
    let (status, _, body) = raw(
        &cloud.front,
        "PUT",
        "/_greenlight/faults/rate-limits",
        &[("content-type", "application/json")],
        r#"{"mode": "off"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cloud.faults.rate_mode(), crate::faults::rate::RateMode::Off);
    for _ in 0..50 {
        codedeploy.list_applications().send().await.unwrap();
    }
    assert!(fault_counts(&cloud).await["throttledByRateLimits"]
        .as_object()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn step_functions_sees_lambda_timeouts_and_fails_on_results_over_256_kb() {
    let cloud = cloud("limits").await;
    cloud.lambda.register(
        "sleeper",
        Arc::new(FnFunction(|_: Value, _: Context| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(json!({}))
            }) as BoxFuture<'static, _>
        })),
    );
    cloud.lambda.register(
        "big",
        Arc::new(FnFunction(|_: Value, _: Context| {
            Box::pin(async move { Ok(json!({"blob": "x".repeat(300_000)})) })
                as BoxFuture<'static, _>
        })),
    );
    // sleeper's Timeout: 100 AWS seconds, at time scale 0.01 and no work allowance: 1 s real.
    cloud.lambda.configure(crate::lambda_host::FunctionLimits {
        timeouts: [("sleeper".to_string(), Duration::from_secs(100))]
            .into_iter()
            .collect(),
        scale: TimeScale::new(0.01),
        work_allowance: Duration::ZERO,
        faults: Some(cloud.faults.clone()),
        record_invocations: false,
    });
    let invoke = "arn:aws:states:::lambda:invoke";
    let definition = json!({
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Task", "Resource": invoke,
                "Parameters": {"FunctionName": cloud.lambda.function_arn("sleeper"), "Payload": {"step": "slow"}},
                "Catch": [{"ErrorEquals": ["Sandbox.Timedout"], "ResultPath": "$.timedOut", "Next": "Big"}],
                "End": true
            },
            "Big": {
                "Type": "Task", "Resource": invoke,
                "Parameters": {"FunctionName": cloud.lambda.function_arn("big"), "Payload": {"step": "big"}},
                "ResultPath": "$.big",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Wrong"}],
                "End": true
            },
            "Wrong": {"Type": "Succeed"}
        }
    });
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk);
    let machine = sfn
        .create_state_machine()
        .name("limits")
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/limits")
        .send()
        .await
        .unwrap();
    let execution = sfn
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name("run-1")
        .input("{}")
        .send()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let described = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(execution.execution_arn())
            .send()
            .await
            .unwrap();
        if d.status() != &aws_sdk_sfn::types::ExecutionStatus::Running
            || tokio::time::Instant::now() > deadline
        {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The data limit failed the execution although States.ALL would have
    // caught a task failure (the error name is moto's, see front/data_limit.rs).
    assert_eq!(
        described.status(),
        &aws_sdk_sfn::types::ExecutionStatus::Failed,
        "{described:?}"
    );
    assert!(
        described
            .cause()
            .unwrap_or_default()
            .contains("States.DataLimitExceeded"),
        "{:?}",
        described.cause()
    );
    let history = sfn
        .get_execution_history()
        .execution_arn(execution.execution_arn())
        .send()
        .await
        .unwrap();
    let entered: Vec<String> = history
        .events()
        .iter()
        .filter_map(|e| {
            e.state_entered_event_details()
                .map(|d| d.name().to_string())
        })
        .collect();
    assert!(!entered.contains(&"Wrong".to_string()), "{entered:?}");
    assert!(entered.contains(&"Big".to_string()), "{entered:?}");
    // The timeout reached Step Functions as Sandbox.Timedout, with AWS's message.
    let timed_out = history
        .events()
        .iter()
        .filter_map(|e| e.task_failed_event_details())
        .find(|d| d.error() == Some("Sandbox.Timedout"))
        .expect("a TaskFailed event with Sandbox.Timedout");
    assert!(
        timed_out
            .cause()
            .unwrap_or_default()
            .contains("Task timed out after 100.00 seconds"),
        "{timed_out:?}"
    );
}

#[test]
fn auto_scaling_capacity_actions_are_routed_to_the_emulation() {
    let form = "application/x-www-form-urlencoded; charset=utf-8";
    let asg = headers(&[
        ("authorization", &signed("autoscaling")),
        ("content-type", form),
    ]);
    for action in super::autoscaling::ACTIONS {
        let body = format!("Action={action}&Version=2011-01-01");
        assert_eq!(
            classify(&Method::POST, "/", None, &asg, body.as_bytes()),
            Route::AutoScaling {
                action: action.to_string()
            }
        );
    }
    assert_eq!(
        classify(&Method::POST, "/", None, &asg, b"Action=SuspendProcesses"),
        Route::Moto
    );
}

/// AWS: with Launch suspended a scale-out sets the desired capacity but
/// launches nothing until Launch is resumed ("How suspended processes affect
/// other processes"); moto alone would launch at once.
#[tokio::test]
async fn a_scale_out_while_launch_is_suspended_launches_nothing_until_resumed() {
    let cloud = cloud("asg-held").await;
    let ec2 = aws_sdk_ec2::Client::new(&cloud.sdk);
    let asg = aws_sdk_autoscaling::Client::new(&cloud.sdk);
    ec2.create_launch_template()
        .launch_template_name("lt")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .unwrap();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("g")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("lt")
                .version("$Latest")
                .build(),
        )
        .availability_zones("us-east-1a")
        .min_size(1)
        .max_size(4)
        .desired_capacity(2)
        .send()
        .await
        .unwrap();
    let read = |asg: aws_sdk_autoscaling::Client| async move {
        let out = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("g")
            .send()
            .await
            .unwrap();
        let g = out.auto_scaling_groups()[0].clone();
        (
            g.desired_capacity().unwrap_or_default(),
            g.instances().len(),
        )
    };
    assert_eq!(read(asg.clone()).await, (2, 2));
    asg.suspend_processes()
        .auto_scaling_group_name("g")
        .scaling_processes("Launch")
        .scaling_processes("Terminate")
        .send()
        .await
        .unwrap();
    asg.set_desired_capacity()
        .auto_scaling_group_name("g")
        .desired_capacity(3)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(asg.clone()).await,
        (3, 2),
        "desired set, nothing launched"
    );
    asg.update_auto_scaling_group()
        .auto_scaling_group_name("g")
        .desired_capacity(4)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(asg.clone()).await,
        (4, 2),
        "desired set, nothing launched"
    );
    let above = asg
        .set_desired_capacity()
        .auto_scaling_group_name("g")
        .desired_capacity(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&above),
        Some("ValidationError")
    );
    // Terminate resumed alone: growing still needs Launch.
    asg.resume_processes()
        .auto_scaling_group_name("g")
        .scaling_processes("Terminate")
        .send()
        .await
        .unwrap();
    assert_eq!(read(asg.clone()).await, (4, 2));
    asg.resume_processes()
        .auto_scaling_group_name("g")
        .scaling_processes("Launch")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read(asg.clone()).await,
        (4, 4),
        "launched once Launch resumed"
    );
    // Not suspended: moto as usual.
    asg.set_desired_capacity()
        .auto_scaling_group_name("g")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    assert_eq!(read(asg).await, (1, 1));
}
