//! The audit log (issue 18 item 5): every change an admin or broadcaster makes over the
//! API, refused ones included, is on record before the answer leaves, and survives
//! `kill -9`; only admins read it. The real server over real HTTP.

mod common;

use common::*;
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "audit-admin-password-1";

struct Api<'a> {
    client: reqwest::Client,
    server: &'a Server,
}

impl Api<'_> {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        call(
            &self.client,
            method,
            &self.server.url(path),
            token,
            body.map(|b| b.to_string()),
        )
        .await
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let a = self
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json["access_token"].as_str().expect("token").to_owned()
    }

    /// The log's actions, newest first, as `(actor, action, target, status)`.
    async fn log(&self, admin: &str) -> Vec<(String, String, String, u64)> {
        let a = self
            .call(
                "GET",
                "/api/v1/admin/audit-log?limit=100",
                Some(admin),
                None,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| {
                (
                    e["actor"].as_str().unwrap_or_default().to_owned(),
                    e["action"].as_str().unwrap_or_default().to_owned(),
                    e["target"].as_str().unwrap_or_default().to_owned(),
                    e["status"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn entry(actor: &str, action: &str, target: &str, status: u64) -> (String, String, String, u64) {
    (actor.into(), action.into(), target.into(), status)
}

#[tokio::test]
async fn changes_are_recorded_with_who_what_and_when_and_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    let env = [("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    let server = Server::start_in(dir.path(), "", &env);
    let api = Api {
        client: client(),
        server: &server,
    };
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    for (name, role) in [("bob", "broadcaster"), ("vic", "viewer")] {
        let a = api
            .call(
                "POST",
                "/api/v1/users",
                Some(&admin),
                Some(json!({"username": name, "password": "a-long-password", "role": role})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
    }
    let bob = api.login("bob", "a-long-password").await;
    let vic = api.login("vic", "a-long-password").await;

    let created = api
        .call(
            "POST",
            "/api/v1/streams",
            Some(&admin),
            Some(json!({"slug": "lobby"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let patched = api
        .call(
            "PATCH",
            "/api/v1/streams/lobby",
            Some(&admin),
            Some(json!({"title": "Lobby"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    // A broadcaster changing someone else's stream: refused, and on record.
    let refused = api
        .call(
            "PATCH",
            "/api/v1/streams/lobby",
            Some(&bob),
            Some(json!({"title": "Mine now"})),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    // A viewer can change nothing: not an admin action, not recorded.
    let viewer = api
        .call(
            "POST",
            "/api/v1/streams",
            Some(&vic),
            Some(json!({"slug": "nope"})),
        )
        .await;
    assert_eq!(viewer.status, 403, "{}", viewer.text);

    let expected = vec![
        entry(
            "bob",
            "PATCH /api/v1/streams/{stream}",
            "/api/v1/streams/lobby",
            403,
        ),
        entry(
            "admin",
            "PATCH /api/v1/streams/{stream}",
            "/api/v1/streams/lobby",
            200,
        ),
        entry("admin", "POST /api/v1/streams", "/api/v1/streams", 201),
        entry("admin", "POST /api/v1/users", "/api/v1/users", 201),
        entry("admin", "POST /api/v1/users", "/api/v1/users", 201),
    ];
    assert_eq!(
        api.log(&admin).await,
        expected,
        "sign-ins and reads are not recorded"
    );
    let first = api
        .call("GET", "/api/v1/admin/audit-log?limit=1", Some(&admin), None)
        .await;
    let e = &first.json["items"][0];
    assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    assert_eq!(e["actor_role"], "broadcaster", "{e}");
    assert_eq!(e["address"], "127.0.0.1", "{e}");
    let cursor = first.json["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_owned();
    let next = api
        .call(
            "GET",
            &format!("/api/v1/admin/audit-log?limit=2&cursor={cursor}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(next.json["items"][0]["status"], 200, "{}", next.text);

    // Acknowledged, then kill -9: the delete is on record after the restart.
    let deleted = api
        .call("DELETE", "/api/v1/streams/lobby", Some(&admin), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    server.kill9();
    let server = Server::start_in(dir.path(), "", &env);
    let api = Api {
        client: client(),
        server: &server,
    };
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        api.log(&admin).await.first(),
        Some(&entry(
            "admin",
            "DELETE /api/v1/streams/{stream}",
            "/api/v1/streams/lobby",
            204
        ))
    );
}

#[tokio::test]
async fn only_admins_read_the_log_and_bad_queries_are_problems() {
    let server = Server::start_with_env("", &[("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let api = Api {
        client: client(),
        server: &server,
    };
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let a = api
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "bob", "password": "a-long-password", "role": "broadcaster"})),
        )
        .await;
    assert_eq!(a.status, 201);
    let bob = api.login("bob", "a-long-password").await;
    for (token, query, status) in [
        (None, "", 401),
        (Some("forged.token.here"), "", 401),
        (Some(bob.as_str()), "", 403),
        (Some(admin.as_str()), "?limit=0", 400),
        (Some(admin.as_str()), "?cursor=abc", 400),
        (Some(admin.as_str()), "?colour=red", 400),
    ] {
        let a = api
            .call(
                "GET",
                &format!("/api/v1/admin/audit-log{query}"),
                token,
                None,
            )
            .await;
        assert_eq!(a.status, status, "{query}: {}", a.text);
        assert_eq!(a.content_type, "application/problem+json", "{query}");
    }
}
