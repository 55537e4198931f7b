//! Which AWS service a request is for, the way moto's own dispatcher decides:
//! the SigV4 credential scope (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`)
//! of the `Authorization` header, or of the `X-Amz-Credential` query parameter
//! of a presigned URL.

use hyper::HeaderMap;

/// The signing name of the service (`s3`, `lambda`, `codedeploy`,
/// `elasticloadbalancing`, `ec2`, `states`, `events`, ...), lower-cased.
pub fn signing_service(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(auth) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(service) = service_from_authorization(auth) {
            return Some(service);
        }
    }
    let query = query?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Credential")
        .and_then(|(_, v)| service_from_scope(&v))
}

/// `AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/lambda/aws4_request, SignedHeaders=..., Signature=...`
pub fn service_from_authorization(auth: &str) -> Option<String> {
    let start = auth.find("Credential=")? + "Credential=".len();
    let rest = &auth[start..];
    let end = rest.find([',', ' ']).unwrap_or(rest.len());
    service_from_scope(&rest[..end])
}

fn service_from_scope(scope: &str) -> Option<String> {
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.as_slice() {
        [_, _, _, service, "aws4_request"] if !service.is_empty() => {
            Some(service.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// The operation of an `X-Amz-Target: <Prefix>.<Operation>` (JSON protocols)
/// when the prefix is `prefix`.
pub fn target_operation<'a>(headers: &'a HeaderMap, prefix: &str) -> Option<&'a str> {
    let target = headers.get("x-amz-target")?.to_str().ok()?;
    let (p, op) = target.split_once('.')?;
    (p == prefix && !op.is_empty()).then_some(op)
}

/// The parameters of a query-protocol request (EC2, ELBv2, ...): the form body
/// and the query string.
pub fn query_params(
    query: Option<&str>,
    body: &[u8],
    headers: &HeaderMap,
) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let is_form = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.starts_with("application/x-www-form-urlencoded"))
        .unwrap_or(false);
    if is_form {
        params.extend(form_urlencoded::parse(body).into_owned());
    }
    params
}

/// The `Action` of a query-protocol request.
pub fn action(params: &[(String, String)]) -> Option<&str> {
    params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn reads_the_service_from_the_credential_scope() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(service_from_authorization(auth).as_deref(), Some("lambda"));
        let auth = "AWS4-HMAC-SHA256 Credential=ak/20240101/us-east-1/elasticloadbalancing/aws4_request,SignedHeaders=host,Signature=abc";
        assert_eq!(
            service_from_authorization(auth).as_deref(),
            Some("elasticloadbalancing")
        );
        assert_eq!(service_from_authorization("AWS ak:sig"), None);
        assert_eq!(
            service_from_authorization("AWS4-HMAC-SHA256 Credential=ak/x/aws4_request"),
            None
        );
    }

    #[test]
    fn falls_back_to_a_presigned_url_scope() {
        let map = headers(&[]);
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ak%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=x";
        assert_eq!(signing_service(&map, Some(q)).as_deref(), Some("s3"));
        assert_eq!(signing_service(&map, None), None);
        let map = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ak/20240101/us-east-1/CodeDeploy/aws4_request, SignedHeaders=host, Signature=x",
        )]);
        assert_eq!(signing_service(&map, None).as_deref(), Some("codedeploy"));
    }

    #[test]
    fn reads_json_targets_and_query_actions() {
        let map = headers(&[
            ("x-amz-target", "CodePipeline_20150709.PutJobSuccessResult"),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ]);
        assert_eq!(
            target_operation(&map, "CodePipeline_20150709"),
            Some("PutJobSuccessResult")
        );
        assert_eq!(target_operation(&map, "CodeDeploy_20141006"), None);
        let params = query_params(
            Some("Version=2016-11-15"),
            b"Action=DescribeInstances&InstanceId.1=i-1",
            &map,
        );
        assert_eq!(action(&params), Some("DescribeInstances"));
        assert!(params.contains(&("InstanceId.1".into(), "i-1".into())));
        let plain = headers(&[("content-type", "application/json")]);
        assert_eq!(action(&query_params(None, b"Action=X", &plain)), None);
    }
}
