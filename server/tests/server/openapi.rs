//! The OpenAPI document against real responses: every documented route is called, every
//! status it answers with must be documented, and every JSON body must match its schema.

use std::collections::BTreeSet;

use http::StatusCode;
use serde_json::Value;

use crate::common::*;

struct Checker {
    doc: Value,
    seen: BTreeSet<(String, String)>,
}

impl Checker {
    fn check(&mut self, method: &str, template: &str, reply: &Reply) {
        let operation = &self.doc["paths"][template][method];
        assert!(operation.is_object(), "{method} {template} is not documented");
        self.seen.insert((method.to_owned(), template.to_owned()));
        let response = &operation["responses"][reply.status.as_str()];
        assert!(
            response.is_object(),
            "{method} {template} answered {} (undocumented): {}",
            reply.status,
            reply.body
        );
        let Some(schema) = response["content"]["application/json"].get("schema") else { return };
        let mut schema = schema.clone();
        // References point into the document's components: give the validator the document.
        schema["components"] = self.doc["components"].clone();
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let body: Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{method} {template}: {e}: {}", reply.body));
        let errors: Vec<String> =
            validator.iter_errors(&body).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "{method} {template} ({}) does not match its schema: {errors:?}\n{}",
            reply.status,
            reply.body
        );
    }

    fn documented(&self) -> BTreeSet<(String, String)> {
        let mut all = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("item").keys() {
                all.insert((method.clone(), path.clone()));
            }
        }
        all
    }
}

#[tokio::test]
async fn every_route_answers_as_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path());
    let cookie = server.sign_in().await;
    server.get("/api/openapi.json", &[]).await.assert_error(StatusCode::UNAUTHORIZED);
    let doc = server.get("/api/openapi.json", &[("cookie", &cookie)]).await;
    assert_eq!(doc.status, StatusCode::OK);
    let mut c = Checker { doc: doc.json(), seen: BTreeSet::new() };
    // The checker itself must be able to fail: a session missing its fields is refused.
    let wrong = Reply {
        status: StatusCode::CREATED,
        headers: Default::default(),
        body: r#"{"id":5}"#.into(),
        bytes: Default::default(),
    };
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Checker { doc: c.doc.clone(), seen: BTreeSet::new() }.check("post", "/api/sessions", &wrong)
    }));
    assert!(refused.is_err(), "a wrong body must not pass the schema check");

    let csrf = [("cookie", cookie.as_str()), ("content-type", "application/json")];
    let reply = server.request("POST", "/api/tokens", &csrf, r#"{"name":"doc"}"#).await;
    c.check("post", "/api/tokens", &reply);
    let bearer = format!("Bearer {}", reply.json()["token"].as_str().expect("token"));
    let auth = [("authorization", bearer.as_str())];
    let json = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    c.check("get", "/api/me", &server.get("/api/me", &auth).await);
    c.check("get", "/api/me", &server.get("/api/me", &[]).await);
    c.check("get", "/api/server", &server.get("/api/server", &auth).await);
    c.check("get", "/api/server", &server.get("/api/server", &[]).await);
    c.check("get", "/api/tokens", &server.get("/api/tokens", &auth).await);
    c.check("get", "/api/images", &server.get("/api/images", &auth).await);
    c.check("get", "/api/images", &server.get("/api/images", &[]).await);
    // A token may not make a user-wide token (403, documented); the cookie may.
    let breeds = server.request("POST", "/api/tokens", &json, r#"{"name":"spare"}"#).await;
    c.check("post", "/api/tokens", &breeds);
    let spare = server.request("POST", "/api/tokens", &csrf, r#"{"name":"spare"}"#).await;
    let spare_id = spare.json()["id"].as_str().expect("id").to_owned();
    c.check(
        "delete",
        "/api/tokens/{id}",
        &server.request("DELETE", &format!("/api/tokens/{spare_id}"), &auth, "").await,
    );
    c.check(
        "delete",
        "/api/tokens/{id}",
        &server.request("DELETE", "/api/tokens/nope", &auth, "").await,
    );

    let created = server.request("POST", "/api/sessions", &json, r#"{"image":"test"}"#).await;
    c.check("post", "/api/sessions", &created);
    c.check(
        "post",
        "/api/sessions",
        &server.request("POST", "/api/sessions", &json, r#"{"image":"nosuch"}"#).await,
    );
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let s = format!("/api/sessions/{id}");
    c.check("get", "/api/sessions", &server.get("/api/sessions", &auth).await);
    c.check("get", "/api/sessions/{id}", &server.get(&s, &auth).await);
    c.check("get", "/api/sessions/{id}", &server.get("/api/sessions/nosuch", &auth).await);
    c.check(
        "post",
        "/api/sessions/{id}/extend",
        &server.request("POST", &format!("{s}/extend"), &json, r#"{"lifetime_s":600}"#).await,
    );

    let terminal = server.request("POST", &format!("{s}/terminals"), &json, "{}").await;
    c.check("post", "/api/sessions/{id}/terminals", &terminal);
    let tid = terminal.json()["id"].as_str().expect("tid").to_owned();
    c.check(
        "get",
        "/api/sessions/{id}/terminals",
        &server.get(&format!("{s}/terminals"), &auth).await,
    );
    let origin = server.origin();
    let ws = server
        .ws(&format!("{s}/terminals/{tid}/ws"), &[("authorization", &bearer), ("origin", &origin)])
        .await;
    assert!(ws.is_ok(), "the websocket upgrades");
    c.seen.insert(("get".to_owned(), "/api/sessions/{id}/terminals/{tid}/ws".to_owned()));
    drop(ws);
    let events =
        server.ws("/api/events/ws", &[("authorization", &bearer), ("origin", &origin)]).await;
    assert!(events.is_ok(), "the events websocket upgrades");
    c.seen.insert(("get".to_owned(), "/api/events/ws".to_owned()));
    drop(events);
    c.check(
        "delete",
        "/api/sessions/{id}/terminals/{tid}",
        &server.request("DELETE", &format!("{s}/terminals/{tid}"), &auth, "").await,
    );

    let written =
        server.request("PUT", &format!("{s}/files/content?path=a.txt"), &auth, "abc").await;
    c.check("put", "/api/sessions/{id}/files/content", &written);
    let read_at = written.json()["modified_ms"].as_i64().expect("modified_ms");
    c.check(
        "get",
        "/api/sessions/{id}/files/stat",
        &server.get(&format!("{s}/files/stat?path=a.txt"), &auth).await,
    );
    c.check(
        "get",
        "/api/sessions/{id}/files/stat",
        &server.get(&format!("{s}/files/stat?path=none"), &auth).await,
    );
    // The write's precondition: the time it was read at passes, an older one is a 409.
    let conditional = |ms: i64| format!("{s}/files/content?path=a.txt&if_modified_ms={ms}");
    let saved = server.request("PUT", &conditional(read_at), &auth, "abd").await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    c.check("put", "/api/sessions/{id}/files/content", &saved);
    let stale = server.request("PUT", &conditional(read_at - 60_000), &auth, "abe").await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    c.check("put", "/api/sessions/{id}/files/content", &stale);
    c.check(
        "get",
        "/api/sessions/{id}/files/content",
        &server.get(&format!("{s}/files/content?path=a.txt"), &auth).await,
    );
    c.check(
        "get",
        "/api/sessions/{id}/files/content",
        &server.get(&format!("{s}/files/content?path=none"), &auth).await,
    );
    c.check(
        "get",
        "/api/sessions/{id}/files",
        &server.get(&format!("{s}/files?path=/workspace"), &auth).await,
    );
    c.check(
        "post",
        "/api/sessions/{id}/files/mkdir",
        &server.request("POST", &format!("{s}/files/mkdir"), &json, r#"{"path":"d"}"#).await,
    );
    c.check(
        "post",
        "/api/sessions/{id}/files/move",
        &server
            .request(
                "POST",
                &format!("{s}/files/move"),
                &json,
                r#"{"from":"a.txt","to":"d/a.txt"}"#,
            )
            .await,
    );
    c.check(
        "get",
        "/api/sessions/{id}/workspace.tar",
        &server.get(&format!("{s}/workspace.tar"), &auth).await,
    );
    c.check(
        "delete",
        "/api/sessions/{id}/files",
        &server.request("DELETE", &format!("{s}/files?path=d&recursive=true"), &auth, "").await,
    );
    c.check(
        "post",
        "/api/sessions/{id}/exec",
        &server.request("POST", &format!("{s}/exec"), &json, r#"{"argv":["echo","x"]}"#).await,
    );
    c.check(
        "post",
        "/api/sessions/{id}/exec",
        &server.request("POST", &format!("{s}/exec"), &json, r#"{"argv":[]}"#).await,
    );
    c.check("get", "/api/sessions/{id}/ports", &server.get(&format!("{s}/ports"), &auth).await);
    c.check(
        "get",
        "/api/sessions/{id}/previews",
        &server.get(&format!("{s}/previews"), &auth).await,
    );
    let preview = |port: &str| format!("{s}/previews/{port}");
    let set = server.request("PUT", &preview("8000"), &json, r#"{"public":true}"#).await;
    c.check("put", "/api/sessions/{id}/previews/{port}", &set);
    let bad = server.request("PUT", &preview("0"), &json, r#"{"public":true}"#).await;
    c.check("put", "/api/sessions/{id}/previews/{port}", &bad);
    let shares = format!("{}/shares", preview("8000"));
    let share = server.request("POST", &shares, &json, r#"{"expires_s":60}"#).await;
    c.check("post", "/api/sessions/{id}/previews/{port}/shares", &share);
    let too_long = server.request("POST", &shares, &json, r#"{"expires_s":99999999}"#).await;
    c.check("post", "/api/sessions/{id}/previews/{port}/shares", &too_long);
    let share_id = share.json()["id"].as_str().expect("share id").to_owned();
    let revoke = server.request("DELETE", &format!("{shares}/{share_id}"), &auth, "").await;
    c.check("delete", "/api/sessions/{id}/previews/{port}/shares/{share}", &revoke);
    let again = server.request("DELETE", &format!("{shares}/{share_id}"), &auth, "").await;
    c.check("delete", "/api/sessions/{id}/previews/{port}/shares/{share}", &again);
    // People: invites are the owner's (the cookie), guests join through them.
    let owner_json = [("cookie", cookie.as_str()), ("content-type", "application/json")];
    let owner_csrf = [("cookie", cookie.as_str()), ("x-flint-csrf", "1")];
    let invites = format!("{s}/invites");
    let invite = server.request("POST", &invites, &owner_json, r#"{"role":"editor"}"#).await;
    c.check("post", "/api/sessions/{id}/invites", &invite);
    let owner_role = server.request("POST", &invites, &owner_json, r#"{"role":"owner"}"#).await;
    c.check("post", "/api/sessions/{id}/invites", &owner_role);
    c.check(
        "get",
        "/api/sessions/{id}/invites",
        &server.get(&invites, &[("cookie", &cookie)]).await,
    );
    let invite = invite.json();
    let secret = invite["url"].as_str().and_then(|u| u.rsplit_once("/join/")).expect("url").1;
    let accept = serde_json::json!({ "token": secret, "name": "Guest" }).to_string();
    let plain_json = [("content-type", "application/json")];
    let joined = server.request("POST", "/api/invites/accept", &plain_json, &accept).await;
    c.check("post", "/api/invites/accept", &joined);
    let unknown = r#"{"token":"nope","name":"Guest"}"#;
    c.check(
        "post",
        "/api/invites/accept",
        &server.request("POST", "/api/invites/accept", &plain_json, unknown).await,
    );
    c.check("get", "/api/sessions/{id}/people", &server.get(&format!("{s}/people"), &auth).await);
    let guests = server.get(&invites, &[("cookie", &cookie)]).await.json();
    let guest = guests[0]["guests"][0]["id"].as_str().expect("guest").to_owned();
    let remove = format!("{s}/people/{guest}");
    c.check(
        "delete",
        "/api/sessions/{id}/people/{guest}",
        &server.request("DELETE", &remove, &owner_csrf, "").await,
    );
    c.check(
        "delete",
        "/api/sessions/{id}/people/{guest}",
        &server.request("DELETE", &remove, &owner_csrf, "").await,
    );
    let revoke = format!("{invites}/{}", invite["id"].as_str().expect("invite id"));
    c.check(
        "delete",
        "/api/sessions/{id}/invites/{invite}",
        &server.request("DELETE", &revoke, &owner_csrf, "").await,
    );
    c.check(
        "delete",
        "/api/sessions/{id}/invites/{invite}",
        &server.request("DELETE", &revoke, &owner_csrf, "").await,
    );
    c.check(
        "post",
        "/api/invites/accept",
        &server.request("POST", "/api/invites/accept", &plain_json, &accept).await,
    );

    // The test image has no Chromium: the browser routes answer as documented regardless
    // (the shared browser itself is tested in `browser.rs`, on the default image).
    c.check("get", "/api/sessions/{id}/browser", &server.get(&format!("{s}/browser"), &auth).await);
    let navigate = format!("{s}/browser/navigate");
    let url = r#"{"url":"http://127.0.0.1:8000/"}"#;
    let unavailable = server.request("POST", &navigate, &json, url).await;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE, "{}", unavailable.body);
    c.check("post", "/api/sessions/{id}/browser/navigate", &unavailable);
    let bad = server.request("POST", &navigate, &json, r#"{"href":"x"}"#).await;
    c.check("post", "/api/sessions/{id}/browser/navigate", &bad);
    let shot = server.get(&format!("{s}/browser/screenshot"), &auth).await;
    c.check("get", "/api/sessions/{id}/browser/screenshot", &shot);
    let ws = server
        .ws(&format!("{s}/browser/ws"), &[("authorization", &bearer), ("origin", &origin)])
        .await;
    assert!(ws.is_ok(), "the browser websocket upgrades");
    c.seen.insert(("get".to_owned(), "/api/sessions/{id}/browser/ws".to_owned()));
    drop(ws);
    c.check("get", "/api/sessions/{id}/events", &server.get(&format!("{s}/events"), &auth).await);
    c.check("delete", "/api/sessions/{id}", &server.request("DELETE", &s, &auth, "").await);
    c.check(
        "post",
        "/api/logout",
        &server
            .request("POST", "/api/logout", &[("cookie", &cookie), ("x-flint-csrf", "1")], "")
            .await,
    );

    let missed: Vec<_> = c.documented().difference(&c.seen).cloned().collect();
    assert!(missed.is_empty(), "documented routes this test never called: {missed:?}");
}
