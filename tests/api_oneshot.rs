//! The REST API in-process: the server's own router (`panocast::server::build`, with
//! its real SQLite file) driven with `tower::ServiceExt::oneshot`, no sockets. The
//! real-HTTP suites (auth_api, stream_lifecycle) cover the same surface over loopback.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use panocast::config::{Config, Secret};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const PASSWORD: &str = "oneshot-admin-password";

struct App {
    router: axum::Router,
    _dir: tempfile::TempDir,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn app() -> App {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.auth.bootstrap_admin_password = Some(Secret::new(PASSWORD));
    let shutdown = CancellationToken::new();
    let built = panocast::server::build(config, shutdown.clone())
        .await
        .expect("server builds");
    App {
        router: built.app,
        _dir: dir,
        _shutdown: shutdown.drop_guard(),
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    json: Value,
}

impl App {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("infallible");
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        Answer {
            status,
            content_type,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn admin_token(&self) -> String {
        let body = json!({"username": "admin", "password": PASSWORD}).to_string();
        let a = self
            .call(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        a.json["access_token"].as_str().expect("token").to_string()
    }
}

fn assert_problem(a: &Answer, status: StatusCode) {
    assert_eq!(a.status, status, "{}", a.json);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.json["status"], status.as_u16());
}

#[tokio::test]
async fn a_stream_is_created_shown_edited_and_deleted() {
    let app = app().await;
    let token = app.admin_token().await;
    let created = app
        .call(
            Method::POST,
            "/api/v1/streams",
            Some(&token),
            Some(
                &json!({
                    "slug": "cam",
                    "projection": "equirect-stereo-tb",
                    "reconnect_window_s": 5,
                    "source": {"kind": "rtsp-pull", "url": "rtsp://127.0.0.1:9/live",
                               "username": "viewer", "password": "camera-secret-9"}
                })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let stream = &created.json["stream"];
    assert_eq!(stream["state"], "idle");
    assert_eq!(stream["reconnect_window_s"], 5);
    assert_eq!(stream["source"]["kind"], "rtsp-pull");
    assert_eq!(stream["source"]["has_password"], true);
    assert!(!created.json.to_string().contains("camera-secret-9"));

    // A PATCH without a password keeps it; the answer never shows it.
    let patched = app
        .call(
            Method::PATCH,
            "/api/v1/streams/cam",
            Some(&token),
            Some(
                &json!({"source": {"kind": "rtsp-pull", "url": "rtsp://127.0.0.1:10/live"},
                        "enabled": false})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.json);
    assert_eq!(patched.json["state"], "disabled");
    assert_eq!(patched.json["source"]["url"], "rtsp://127.0.0.1:10/live");
    assert_eq!(patched.json["source"]["has_password"], true);

    let shown = app
        .call(Method::GET, "/api/v1/streams/cam", Some(&token), None)
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json["enabled"], false);
    assert_eq!(shown.json["session"], Value::Null);

    let deleted = app
        .call(Method::DELETE, "/api/v1/streams/cam", Some(&token), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_problem(
        &app.call(Method::GET, "/hls/cam/index.m3u8", None, None)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.call(Method::GET, "/api/v1/streams/cam", Some(&token), None)
            .await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn bad_requests_get_problem_bodies() {
    let app = app().await;
    let token = app.admin_token().await;
    assert_problem(
        &app.call(Method::POST, "/api/v1/streams", None, Some("{}"))
            .await,
        StatusCode::UNAUTHORIZED,
    );
    assert_problem(
        &app.call(
            Method::POST,
            "/api/v1/streams",
            Some("forged.token.x"),
            Some("{}"),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    );
    assert_problem(
        &app.call(
            Method::POST,
            "/api/v1/streams",
            Some(&token),
            Some("{\"slug\":"),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    let invalid = app
        .call(
            Method::POST,
            "/api/v1/streams",
            Some(&token),
            Some(&json!({"slug": "x", "reconnect_window_s": 99999}).to_string()),
        )
        .await;
    assert_problem(&invalid, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.json["detail"]
        .as_str()
        .is_some_and(|d| d.contains("reconnect_window_s")));
    let bad_source = app
        .call(
            Method::POST,
            "/api/v1/streams",
            Some(&token),
            Some(
                &json!({"slug": "y", "source": {"kind": "rtsp-pull", "url": "http://x/"}})
                    .to_string(),
            ),
        )
        .await;
    assert_problem(&bad_source, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(
        &app.call(Method::GET, "/api/v1/streams/nope", None, None)
            .await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn health_and_the_openapi_document_answer() {
    let app = app().await;
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json["status"], "ok");
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    let schemas = &doc.json["components"]["schemas"];
    let stream_view = properties(schemas, &schemas["StreamView"]);
    for field in [
        "state",
        "session",
        "enabled",
        "reconnect_window_s",
        "source",
        "slug",
        "owner",
    ] {
        assert!(
            stream_view.contains(&field.to_string()),
            "StreamView lacks {field}"
        );
    }
    assert!(!stream_view.contains(&"owner_id".to_string()));
}

/// The property names of `schema`, through `allOf` and `$ref`s into `schemas`.
fn properties(schemas: &Value, schema: &Value) -> Vec<String> {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.rsplit('/').next().unwrap_or_default();
        return properties(schemas, &schemas[name]);
    }
    let mut names: Vec<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        names.extend(properties(schemas, part));
    }
    names
}
