use std::time::Duration;

use clap::{CommandFactory, Parser};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use super::state::base64url;
use super::wire::{base64_decode, form_decode};
use super::{MockOptions, MockServer, Stats};

const CLIENT_ID: &str = "oauth-lock-demo";
const REUSE_DETECTED: &str = "refresh token reuse detected; family revoked";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    opts: MockOptions,
}

/// Options as `oauth-lock mock-server ARGS…` would parse them.
fn options(args: &[&str]) -> MockOptions {
    let argv = std::iter::once("mock-server").chain(args.iter().copied());
    Cli::try_parse_from(argv).expect("valid switches").opts
}

async fn start(args: &[&str]) -> MockServer {
    MockServer::start(options(args))
        .await
        .expect("server starts")
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

async fn login(client: &Client, server: &MockServer) -> Value {
    let response = client
        .post(format!("{}/login", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    json_of(response).await
}

async fn refresh(client: &Client, server: &MockServer, refresh_token: &str) -> reqwest::Response {
    client
        .post(server.token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
        ])
        .send()
        .await
        .unwrap()
}

/// Refreshes and expects success.
async fn refreshed(client: &Client, server: &MockServer, refresh_token: &str) -> Value {
    let response = refresh(client, server, refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    json_of(response).await
}

/// Expects an OAuth error answer and returns its `error_description`.
async fn oauth_error(response: reqwest::Response, status: StatusCode, error: &str) -> String {
    assert_eq!(response.status(), status);
    let body = json_of(response).await;
    assert_eq!(body["error"], error, "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

async fn resource(client: &Client, server: &MockServer, access_token: &str) -> StatusCode {
    client
        .get(format!("{}/resource", server.url()))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
}

fn text<'a>(tokens: &'a Value, field: &str) -> &'a str {
    tokens[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {tokens}"))
}

#[test]
fn switches_are_consistent_and_default_as_documented() {
    Cli::command().debug_assert();
    let opts = options(&[]);
    assert_eq!(opts.port, 0);
    assert_eq!(opts.lifetime, Duration::from_secs(3600));
    assert_eq!(opts.grace, Duration::ZERO);
    assert_eq!(opts.body, super::BodyKind::Any);
    assert_eq!(opts.client_id, CLIENT_ID);
    assert_eq!(opts.client_secret, None);
    assert!(!opts.jwt);
}

#[tokio::test]
async fn login_then_refresh_rotates_both_tokens() {
    let server = start(&[]).await;
    let client = Client::new();
    let first = login(&client, &server).await;
    let family = text(&first["account"], "uuid").to_owned();
    assert_eq!(family.len(), 36);
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], json!(3600));
    assert_eq!(first["scope"], "user:inference");
    assert!(text(&first, "access_token").starts_with("at-"));
    assert!(text(&first, "refresh_token").starts_with("rt-"));

    let response = refresh(&client, &server, text(&first, "refresh_token")).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second = json_of(response).await;
    assert_eq!(second["account"]["uuid"], family.as_str());
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(
        resource(&client, &server, text(&second, "access_token")).await,
        StatusCode::OK
    );
    // The rotated token keeps working: rotation is a chain.
    refreshed(&client, &server, text(&second, "refresh_token")).await;

    let expected = Stats {
        token_requests: 2,
        logins: 1,
        refreshes: 2,
        resource_ok: 1,
        ..Stats::default()
    };
    assert_eq!(server.stats(), expected);
    server.shutdown().await;
}

#[tokio::test]
async fn replay_revokes_the_whole_family() {
    let server = start(&[]).await;
    let client = Client::new();
    let first = login(&client, &server).await;
    let second = refreshed(&client, &server, text(&first, "refresh_token")).await;

    let replay = refresh(&client, &server, text(&first, "refresh_token")).await;
    let description = oauth_error(replay, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(description, REUSE_DETECTED);

    let response = client
        .get(format!("{}/resource", server.url()))
        .bearer_auth(text(&second, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    // The newest refresh token, never spent, died with its family.
    let newest = refresh(&client, &server, text(&second, "refresh_token")).await;
    oauth_error(newest, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let stats = server.stats();
    assert_eq!(stats.refreshes, 1);
    assert_eq!(stats.replays, 1);
    assert_eq!(stats.revoked_families, 1);
    assert_eq!(stats.invalid_grants, 2);
    assert_eq!(stats.resource_unauthorized, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_refresh_token_is_an_invalid_grant_but_not_a_replay() {
    let server = start(&[]).await;
    let response = refresh(&Client::new(), &server, "rt-nobody").await;
    oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let stats = server.stats();
    assert_eq!((stats.invalid_grants, stats.replays), (1, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn simultaneous_presentations_let_exactly_one_win() {
    // The latency holds every request in flight at once before any is answered.
    let server = start(&["--latency", "100ms"]).await;
    let client = Client::new();
    let tokens = login(&client, &server).await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url) = (client.clone(), server.token_url());
        let refresh_token = text(&tokens, "refresh_token").to_owned();
        requests.spawn(async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
                ("client_id", CLIENT_ID),
            ];
            client.post(url).form(&form).send().await.unwrap().status()
        });
    }
    let statuses = requests.join_all().await;
    let successes = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(successes, 1, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST));

    let stats = server.stats();
    assert_eq!(stats.token_requests, 16);
    assert_eq!(stats.refreshes, 1);
    assert_eq!(stats.replays, 15);
    assert_eq!(stats.revoked_families, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn reuse_within_grace_returns_the_same_tokens_and_keeps_the_family() {
    let server = start(&["--grace", "10s"]).await;
    let client = Client::new();
    let first = login(&client, &server).await;
    let second = refreshed(&client, &server, text(&first, "refresh_token")).await;
    let again = refreshed(&client, &server, text(&first, "refresh_token")).await;
    assert_eq!(again, second);
    assert_eq!(
        resource(&client, &server, text(&second, "access_token")).await,
        StatusCode::OK
    );
    refreshed(&client, &server, text(&second, "refresh_token")).await;

    let stats = server.stats();
    assert_eq!(stats.refreshes, 2);
    assert_eq!(stats.replays, 1);
    assert_eq!(stats.grace_reuses, 1);
    assert_eq!(stats.revoked_families, 0);
    assert_eq!(stats.invalid_grants, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn reuse_after_grace_revokes_the_family() {
    let server = start(&["--grace", "100ms"]).await;
    let client = Client::new();
    let first = login(&client, &server).await;
    refreshed(&client, &server, text(&first, "refresh_token")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = refresh(&client, &server, text(&first, "refresh_token")).await;
    let description = oauth_error(late, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(description, REUSE_DETECTED);
    let stats = server.stats();
    assert_eq!(
        (stats.replays, stats.grace_reuses, stats.revoked_families),
        (1, 0, 1)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_rotation_the_refresh_token_stays_valid() {
    let server = start(&["--no-rotate"]).await;
    let client = Client::new();
    let first = login(&client, &server).await;
    let refresh_token = text(&first, "refresh_token");
    for _ in 0..3 {
        let tokens = refreshed(&client, &server, refresh_token).await;
        assert!(tokens.get("refresh_token").is_none(), "{tokens}");
        assert_eq!(
            resource(&client, &server, text(&tokens, "access_token")).await,
            StatusCode::OK
        );
    }
    let stats = server.stats();
    assert_eq!((stats.refreshes, stats.replays), (3, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn injected_failures_leave_the_state_alone() {
    let server = start(&["--fail-every", "3"]).await;
    let client = Client::new();
    let tokens = login(&client, &server).await;
    let tokens = refreshed(&client, &server, text(&tokens, "refresh_token")).await;
    let tokens = refreshed(&client, &server, text(&tokens, "refresh_token")).await;
    let third = refresh(&client, &server, text(&tokens, "refresh_token")).await;
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json_of(third).await,
        json!({ "error": "temporarily_unavailable" })
    );
    // The token presented to the failed request was not spent.
    refreshed(&client, &server, text(&tokens, "refresh_token")).await;

    let stats = server.stats();
    assert_eq!(stats.token_requests, 4);
    assert_eq!(stats.injected_failures, 1);
    assert_eq!(stats.refreshes, 3);
    assert_eq!(stats.replays, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_answers_leave_the_state_alone() {
    let server = start(&["--malformed-every", "2"]).await;
    let client = Client::new();
    let tokens = login(&client, &server).await;
    let tokens = refreshed(&client, &server, text(&tokens, "refresh_token")).await;
    let second = refresh(&client, &server, text(&tokens, "refresh_token")).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(second.text().await.unwrap(), "<html>not json</html>");
    refreshed(&client, &server, text(&tokens, "refresh_token")).await;

    let stats = server.stats();
    assert_eq!(stats.token_requests, 3);
    assert_eq!(stats.malformed, 1);
    assert_eq!(stats.refreshes, 2);
    server.shutdown().await;
}

/// A form and a JSON authorization-code request with the same parameters.
fn code_grant(client: &Client, server: &MockServer, json: bool) -> reqwest::RequestBuilder {
    let params = [
        ("grant_type", "authorization_code"),
        ("code", "c0de"),
        ("client_id", CLIENT_ID),
    ];
    let request = client.post(server.token_url());
    if json {
        let body: serde_json::Map<String, Value> = params
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        request.json(&body)
    } else {
        request.form(&params)
    }
}

#[tokio::test]
async fn body_kinds_are_enforced() {
    let client = Client::new();
    for (kind, form_ok, json_ok) in [
        ("any", true, true),
        ("form", true, false),
        ("json", false, true),
    ] {
        let server = start(&["--body", kind]).await;
        for (json, ok) in [(false, form_ok), (true, json_ok)] {
            let response = code_grant(&client, &server, json).send().await.unwrap();
            if ok {
                assert_eq!(
                    response.status(),
                    StatusCode::OK,
                    "--body {kind}, json {json}"
                );
            } else {
                oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
            }
        }
        let stats = server.stats();
        assert_eq!(stats.logins, u64::from(form_ok) + u64::from(json_ok));
        assert_eq!(
            stats.bad_requests,
            u64::from(!form_ok) + u64::from(!json_ok)
        );
        server.shutdown().await;
    }
}

#[tokio::test]
async fn malformed_requests_are_rejected() {
    let server = start(&[]).await;
    let client = Client::new();
    let post = |content_type: &'static str, body: &'static str| {
        client
            .post(server.token_url())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let cases = [
        ("text/plain", "grant_type=password", "invalid_request"),
        (form, "client_id=oauth-lock-demo", "invalid_request"),
        (form, "grant_type=refresh_token&client_id=oauth-lock-demo", "invalid_request"),
        (form, "grant_type=refresh_token&refresh_token=&client_id=oauth-lock-demo", "invalid_request"),
        (form, "grant_type=password&username=u&client_id=oauth-lock-demo", "invalid_request"),
        (form, "grant_type=password&grant_type=password&username=u&password=p&client_id=oauth-lock-demo", "invalid_request"),
        (form, "grant_type=password&username=%zz&password=p&client_id=oauth-lock-demo", "invalid_request"),
        (form, "grant_type=client_credentials&client_id=oauth-lock-demo", "unsupported_grant_type"),
        ("application/json", "{\"grant_type\":1,\"client_id\":\"oauth-lock-demo\"}", "invalid_request"),
        ("application/json", "[]", "invalid_request"),
        ("application/json", "{", "invalid_request"),
    ];
    for (content_type, body, error) in cases {
        let response = post(content_type, body).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json_of(response).await["error"], error, "{body}");
    }
    let response = post(
        "application/x-www-form-urlencoded; charset=UTF-8",
        "grant_type=password&username=u+1&password=p%26&client_id=oauth-lock-demo",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let stats = server.stats();
    assert_eq!(stats.bad_requests, cases.len() as u64);
    assert_eq!(stats.logins, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn client_is_authenticated_by_basic_or_body_secret() {
    let secret = "s3cr:t +x";
    let server = start(&["--client-secret", secret]).await;
    let client = Client::new();
    let grant = [("grant_type", "authorization_code"), ("code", "c0de")];
    let token_request = || client.post(server.token_url());

    // RFC 6749 §2.3.1: the id and the secret are form-encoded before Basic encoding.
    let basic = token_request()
        .basic_auth(CLIENT_ID, Some("s3cr%3At+%2Bx"))
        .form(&grant);
    assert_eq!(basic.send().await.unwrap().status(), StatusCode::OK);
    let in_body = token_request().form(
        &[
            &grant[..],
            &[("client_id", CLIENT_ID), ("client_secret", secret)],
        ]
        .concat(),
    );
    assert_eq!(in_body.send().await.unwrap().status(), StatusCode::OK);

    let rejected = [
        token_request()
            .basic_auth(CLIENT_ID, Some("wrong"))
            .form(&grant),
        token_request()
            .basic_auth("someone-else", Some("s3cr%3At+%2Bx"))
            .form(&grant),
        token_request().form(&[&grant[..], &[("client_id", CLIENT_ID)]].concat()),
        token_request().form(
            &[
                &grant[..],
                &[("client_id", CLIENT_ID), ("client_secret", "wrong")],
            ]
            .concat(),
        ),
        token_request()
            .header("authorization", "Basic !!!")
            .form(&grant),
    ];
    for request in rejected {
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"oauth-lock-mock\""
        );
        oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // Two authentication methods at once is a malformed request (RFC 6749 §2.3).
    let both = token_request()
        .basic_auth(CLIENT_ID, Some("s3cr%3At+%2Bx"))
        .form(&[&grant[..], &[("client_secret", secret)]].concat());
    oauth_error(
        both.send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    let stats = server.stats();
    assert_eq!((stats.logins, stats.bad_requests), (2, 6));
    server.shutdown().await;
}

#[tokio::test]
async fn client_id_is_required_without_a_secret_too() {
    let server = start(&[]).await;
    let client = Client::new();
    for client_id in [None, Some("someone-else")] {
        let mut form = vec![("grant_type", "authorization_code"), ("code", "c0de")];
        form.extend(client_id.map(|id| ("client_id", id)));
        let response = client
            .post(server.token_url())
            .form(&form)
            .send()
            .await
            .unwrap();
        oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn access_tokens_expire_after_their_lifetime() {
    let server = start(&["--lifetime", "500ms"]).await;
    let client = Client::new();
    let tokens = login(&client, &server).await;
    assert_eq!(tokens["expires_in"], json!(0.5));
    let access_token = text(&tokens, "access_token");
    assert_eq!(
        resource(&client, &server, access_token).await,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        resource(&client, &server, access_token).await,
        StatusCode::UNAUTHORIZED
    );

    let anonymous = client
        .get(format!("{}/resource", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer realm=\"oauth-lock-mock\""
    );
    assert_eq!(
        resource(&client, &server, "at-made-up").await,
        StatusCode::UNAUTHORIZED
    );

    let stats = server.stats();
    assert_eq!((stats.resource_ok, stats.resource_unauthorized), (1, 3));
    server.shutdown().await;
}

#[tokio::test]
async fn revoke_access_invalidates_access_tokens_only() {
    let server = start(&[]).await;
    let client = Client::new();
    let first = login(&client, &server).await;
    let second = login(&client, &server).await;
    let response = client
        .post(format!("{}/admin/revoke-access", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await, json!({ "revoked": 2 }));
    for tokens in [&first, &second] {
        assert_eq!(
            resource(&client, &server, text(tokens, "access_token")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let renewed = refreshed(&client, &server, text(&first, "refresh_token")).await;
    assert_eq!(
        resource(&client, &server, text(&renewed, "access_token")).await,
        StatusCode::OK
    );
    server.shutdown().await;
}

#[tokio::test]
async fn admin_revoke_family_is_counted_apart_from_replays() {
    let server = start(&[]).await;
    let client = Client::new();
    let tokens = login(&client, &server).await;
    let revoke = |refresh_token: &str| {
        client
            .post(format!("{}/admin/revoke-family", server.url()))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
    };
    let response = revoke(text(&tokens, "refresh_token")).await.unwrap();
    let body = json_of(response).await;
    assert_eq!(body["revoked"], true);
    assert_eq!(body["family"], tokens["account"]["uuid"]);
    let again = json_of(revoke(text(&tokens, "refresh_token")).await.unwrap()).await;
    assert_eq!(again["revoked"], false);
    let unknown = revoke("rt-nobody").await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let response = refresh(&client, &server, text(&tokens, "refresh_token")).await;
    oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let stats = server.stats();
    assert_eq!(stats.admin_revocations, 1);
    assert_eq!((stats.revoked_families, stats.replays), (0, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn stats_endpoint_serves_the_counters() {
    let server = start(&[]).await;
    let client = Client::new();
    login(&client, &server).await;
    let response = client
        .get(format!("{}/stats", server.url()))
        .send()
        .await
        .unwrap();
    let served: Stats = response.json().await.unwrap();
    assert_eq!(served, server.stats());
    assert_eq!(served.logins, 1);
    server.shutdown().await;
}

#[test]
fn base64_decoding_is_strict() {
    assert_eq!(base64_decode("b2F1dGg6bG9jaw==").unwrap(), b"oauth:lock");
    assert_eq!(base64_decode("b2F1dGg6bG9jaw").unwrap(), b"oauth:lock");
    assert_eq!(base64_decode("").unwrap(), b"");
    assert_eq!(base64_decode("YQ==").unwrap(), b"a");
    assert_eq!(base64_decode("+/8=").unwrap(), [0xfb, 0xff]);
    assert!(base64_decode("YQ=").is_none());
    assert!(base64_decode("Y").is_none());
    assert!(base64_decode("a b=").is_none());
}

#[test]
fn form_decoding_is_strict() {
    assert_eq!(form_decode(b"a+b%2Bc%3a").unwrap(), "a b+c:");
    assert_eq!(form_decode(b"%C3%A9").unwrap(), "é");
    assert!(form_decode(b"%zz").is_none());
    assert!(form_decode(b"%4").is_none());
    assert!(form_decode(b"%FF").is_none());
}

/// The claims of a `--jwt` access token (its middle part, unpadded base64url JSON).
fn jwt_claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "three dot-separated parts");
    let standard = |part: &str| part.replace('-', "+").replace('_', "/");
    for part in &parts {
        assert!(
            !part.is_empty() && !part.contains('='),
            "unpadded, non-empty"
        );
        base64_decode(&standard(part)).expect("base64url");
    }
    let header: Value =
        serde_json::from_slice(&base64_decode(&standard(parts[0])).unwrap()).unwrap();
    assert_eq!(header["typ"], "JWT");
    serde_json::from_slice(&base64_decode(&standard(parts[1])).unwrap()).expect("JSON claims")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn jwt_access_tokens_carry_their_expiry_and_still_work() {
    let server = start(&["--jwt", "--lifetime", "90s"]).await;
    let client = Client::new();
    let before = unix_now();
    let first = login(&client, &server).await;
    let second = refreshed(&client, &server, text(&first, "refresh_token")).await;
    let after = unix_now();
    let mut seen = std::collections::HashSet::new();
    for tokens in [&first, &second] {
        let access = text(tokens, "access_token");
        assert!(seen.insert(access.to_owned()), "every access token is new");
        let claims = jwt_claims(access);
        let expires_in = tokens["expires_in"].as_u64().expect("whole seconds");
        assert_eq!(expires_in, 90);
        let (exp, iat) = (
            claims["exp"].as_u64().unwrap(),
            claims["iat"].as_u64().unwrap(),
        );
        // exp is the issue time plus expires_in, in whole seconds (rounded down).
        assert!(
            before <= iat && iat <= after,
            "iat {iat} within [{before}, {after}]"
        );
        assert_eq!(exp, iat + expires_in);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
        assert_eq!(resource(&client, &server, access).await, StatusCode::OK);
    }
    assert_ne!(
        jwt_claims(text(&first, "access_token"))["jti"],
        jwt_claims(text(&second, "access_token"))["jti"]
    );
    // Refresh tokens are not JWTs: only the access token changes shape.
    assert!(text(&second, "refresh_token").starts_with("rt-"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_jwt_is_refused_once_past_its_lifetime() {
    let server = start(&["--jwt", "--lifetime", "300ms"]).await;
    let client = Client::new();
    let tokens = login(&client, &server).await;
    let access = text(&tokens, "access_token");
    assert_eq!(resource(&client, &server, access).await, StatusCode::OK);
    // A fractional lifetime: exp rounds down, never past the provider's own expiry.
    let claims = jwt_claims(access);
    assert!(claims["exp"].as_u64().unwrap() <= unix_now() + 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        resource(&client, &server, access).await,
        StatusCode::UNAUTHORIZED
    );
    server.shutdown().await;
}

#[test]
fn base64url_encodes_unpadded_with_the_url_alphabet() {
    assert_eq!(base64url(b""), "");
    assert_eq!(base64url(b"a"), "YQ");
    assert_eq!(base64url(b"ab"), "YWI");
    assert_eq!(base64url(b"abc"), "YWJj");
    assert_eq!(base64url(b"oauth:lock"), "b2F1dGg6bG9jaw");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    for n in 0..40u8 {
        let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
        let standard = base64url(&bytes).replace('-', "+").replace('_', "/");
        assert_eq!(base64_decode(&standard).unwrap(), bytes);
    }
}
