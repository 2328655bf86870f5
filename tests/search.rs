//! `GET /api/v1/search` through the real server: streams, events and an asset created
//! over the API are found by a title word, a tag, a prefix and with one letter wrong;
//! private items only by who may list them; edits and deletes reach the index; hostile
//! queries are answered, never with a 500; a live stream (real ffmpeg publisher) sorts
//! before an offline one.

mod common;
mod vod_support;

use std::time::{Duration, Instant};

use common::{call, client, source_file, Answer, Publisher, Server};
use serde_json::{json, Value};
use vod_support::{config, curl_upload, env, tokens};

/// `GET /api/v1/search?<query>` as `token` (anonymous without one).
async fn search(
    c: &reqwest::Client,
    s: &Server,
    token: Option<&str>,
    query: &[(&str, &str)],
) -> Answer {
    let url = reqwest::Url::parse_with_params(&s.url("/api/v1/search"), query).expect("url");
    call(c, "GET", url.as_str(), token, None).await
}

/// Ids of the results of `q`, in order.
async fn found(c: &reqwest::Client, s: &Server, token: Option<&str>, q: &str) -> Vec<String> {
    let a = search(c, s, token, &[("q", q)]).await;
    assert_eq!(a.status, 200, "{q}: {}", a.text);
    ids(&a.json)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|hit| hit["id"].as_str().expect("id").to_string())
        .collect()
}

fn hit<'a>(page: &'a Value, id: &str) -> &'a Value {
    page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|h| h["id"] == id))
        .unwrap_or_else(|| panic!("{id} not in {page}"))
}

/// Creates a stream as `token`: (id, stream key).
async fn stream(c: &reqwest::Client, s: &Server, token: &str, body: Value) -> (String, String) {
    let a = call(
        c,
        "POST",
        &s.url("/api/v1/streams"),
        Some(token),
        Some(body.to_string()),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    (
        a.json["stream"]["id"].as_str().expect("id").to_string(),
        a.json["stream_key"].as_str().expect("key").to_string(),
    )
}

async fn event(c: &reqwest::Client, s: &Server, token: &str, body: Value) -> String {
    let a = call(
        c,
        "POST",
        &s.url("/api/v1/events"),
        Some(token),
        Some(body.to_string()),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.json["id"].as_str().expect("id").to_string()
}

fn assert_problem(a: &Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    assert_eq!(a.content_type, "application/problem+json", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_by_word_tag_prefix_and_typo_and_only_what_the_caller_may_see() {
    let s = Server::start_with_env(&config(), &env());
    let c = client();
    let (admin, caster, watcher) = tokens(&c, &s).await;
    let (lobby, _) = stream(
        &c,
        &s,
        &admin,
        json!({"slug": "lobby", "title": "The Lobby",
        "description": "Meet everyone before the show starts", "tags": ["welcome"]}),
    )
    .await;
    let (backstage, _) = stream(
        &c,
        &s,
        &admin,
        json!({"slug": "backstage",
        "title": "Backstage lobby", "tags": ["crew"], "visibility": "private"}),
    )
    .await;
    let (hall, _) = stream(
        &c,
        &s,
        &admin,
        json!({"slug": "hall", "title": "Main Hall",
        "description": "Keynote talks", "tags": ["conference"], "projection": "flat"}),
    )
    .await;
    let (cafe, _) = stream(
        &c,
        &s,
        &caster,
        json!({"slug": "cafe", "title": "Café Zürich"}),
    )
    .await;

    // A title word, a tag, a prefix, one letter wrong; case and accents aside.
    assert_eq!(found(&c, &s, None, "lobby").await, [lobby.as_str()]);
    assert_eq!(found(&c, &s, None, "conference").await, [hall.as_str()]);
    assert_eq!(found(&c, &s, None, "lob").await, [lobby.as_str()]);
    assert_eq!(found(&c, &s, None, "KEYN").await, [hall.as_str()]);
    assert_eq!(found(&c, &s, None, "cafe zurich").await, [cafe.as_str()]);
    assert_eq!(found(&c, &s, None, "CAFÉ").await, [cafe.as_str()]);
    let typo = search(&c, &s, None, &[("q", "lobyy")]).await;
    assert_eq!(ids(&typo.json), [lobby.as_str()], "{}", typo.text);
    assert_eq!(typo.json["items"][0]["fuzzy"], true);
    assert!(
        found(&c, &s, None, "lboby").await.is_empty(),
        "two edits away"
    );

    // The hit says what it is and where to watch it.
    let page = search(&c, &s, None, &[("q", "meet")]).await;
    let h = hit(&page.json, &lobby);
    assert_eq!(h["type"], "stream");
    assert_eq!(h["slug"], "lobby");
    assert_eq!(h["title"], "The Lobby");
    assert_eq!(h["tags"], json!(["welcome"]));
    assert_eq!(h["live"], false);
    assert_eq!(h["projection"], "equirect");
    assert_eq!(h["url"], "/watch/lobby");
    assert!(
        h["snippet"]
            .as_str()
            .is_some_and(|t| t.contains("Meet everyone")),
        "{h}"
    );

    // The private stream: for its manager (the admin), never anonymous, a viewer or
    // another broadcaster.
    let mut both = vec![lobby.as_str(), backstage.as_str()];
    both.sort();
    let mut by_admin = found(&c, &s, Some(&admin), "lobby").await;
    by_admin.sort();
    assert_eq!(by_admin, both);
    for who in [None, Some(watcher.as_str()), Some(caster.as_str())] {
        assert_eq!(found(&c, &s, who, "lobby").await, [lobby.as_str()]);
        assert!(found(&c, &s, who, "crew").await.is_empty());
        assert!(found(&c, &s, who, "backstag").await.is_empty());
    }

    // An edit reaches the index: the old word no longer finds it, the new one does.
    let a = call(
        &c,
        "PATCH",
        &s.url("/api/v1/streams/lobby"),
        Some(&admin),
        Some(json!({"title": "Foyer", "tags": ["entrance"]}).to_string()),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(found(&c, &s, None, "lobby").await.is_empty());
    assert!(found(&c, &s, None, "welcome").await.is_empty());
    assert_eq!(found(&c, &s, None, "foyer").await, [lobby.as_str()]);
    assert_eq!(found(&c, &s, None, "entrance").await, [lobby.as_str()]);
    // Made private, it leaves anonymous results.
    let a = call(
        &c,
        "PATCH",
        &s.url("/api/v1/streams/hall"),
        Some(&admin),
        Some(json!({"visibility": "private"}).to_string()),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(found(&c, &s, None, "conference").await.is_empty());
    assert_eq!(
        found(&c, &s, Some(&admin), "conference").await,
        [hall.as_str()]
    );
    let a = call(
        &c,
        "PATCH",
        &s.url("/api/v1/streams/hall"),
        Some(&admin),
        Some(json!({"visibility": "public"}).to_string()),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);

    // Events: for signed-in callers (as GET /api/v1/events), upcoming before the rest.
    let opening = event(
        &c,
        &s,
        &admin,
        json!({"title": "Opening keynote",
        "description": "The first talk", "tags": ["opening"], "stream": "hall",
        "scheduled_start": "2030-01-01T10:00:00Z"}),
    )
    .await;
    let crew_call = event(
        &c,
        &s,
        &admin,
        json!({"title": "Crew call", "stream": "backstage",
        "scheduled_start": "2030-01-01T08:00:00Z"}),
    )
    .await;
    let page = search(&c, &s, Some(&watcher), &[("q", "opening")]).await;
    assert_eq!(ids(&page.json), [opening.as_str()], "{}", page.text);
    let h = hit(&page.json, &opening);
    assert_eq!(h["type"], "event");
    assert_eq!(h["upcoming"], true);
    assert_eq!(h["live"], false);
    assert_eq!(h["state"], "scheduled");
    assert_eq!(h["scheduled_start"], "2030-01-01T10:00:00Z");
    assert_eq!(h["stream"], "hall");
    assert_eq!(h["projection"], "flat");
    assert_eq!(h["url"], "/watch/hall");
    assert!(found(&c, &s, None, "opening").await.is_empty(), "anonymous");
    // An event on a private stream is found only by who may list the stream.
    assert!(found(&c, &s, Some(&watcher), "crew call").await.is_empty());
    assert_eq!(
        found(&c, &s, Some(&admin), "crew call").await,
        [crew_call.as_str()]
    );
    // "keynote": the upcoming event before the stream (a better match by words).
    assert_eq!(
        found(&c, &s, Some(&admin), "keynote").await,
        [opening.as_str(), hall.as_str()]
    );

    // Filters.
    let only = |q: &'static str, filters: &'static [(&'static str, &'static str)]| {
        let mut query = vec![("q", q)];
        query.extend_from_slice(filters);
        query
    };
    let page = search(
        &c,
        &s,
        Some(&admin),
        &only("keynote", &[("type", "stream")]),
    )
    .await;
    assert_eq!(ids(&page.json), [hall.as_str()], "{}", page.text);
    let page = search(
        &c,
        &s,
        Some(&admin),
        &only("keynote", &[("upcoming", "true")]),
    )
    .await;
    assert_eq!(ids(&page.json), [opening.as_str()], "{}", page.text);
    let page = search(&c, &s, Some(&admin), &only("keynote", &[("live", "true")])).await;
    assert!(ids(&page.json).is_empty(), "{}", page.text);
    let page = search(
        &c,
        &s,
        Some(&admin),
        &only("cafe", &[("projection", "flat")]),
    )
    .await;
    assert!(ids(&page.json).is_empty(), "{}", page.text);
    let page = search(
        &c,
        &s,
        Some(&admin),
        &only("cafe", &[("projection", "equirect")]),
    )
    .await;
    assert_eq!(ids(&page.json), [cafe.as_str()], "{}", page.text);

    // A deleted event disappears.
    let a = call(
        &c,
        "DELETE",
        &s.url(&format!("/api/v1/events/{opening}")),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text);
    assert!(found(&c, &s, Some(&admin), "opening").await.is_empty());
    assert_eq!(
        found(&c, &s, Some(&admin), "keynote").await,
        [hall.as_str()]
    );

    // Assets: a one-shot upload (the bytes are no media: the asset errors, its title
    // is still found), public for everyone, private for its owner.
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("tape.mp4");
    std::fs::write(&file, b"not really a video").expect("write");
    let (status, public) = curl_upload(
        &s,
        Some(&caster),
        &file,
        &["title=Rehearsal tape", "visibility=public"],
    );
    assert_eq!(status, 201, "{public}");
    let (status, private) = curl_upload(
        &s,
        Some(&caster),
        &file,
        &["title=Secret rehearsal", "visibility=private"],
    );
    assert_eq!(status, 201, "{private}");
    let (public, private) = (
        public["id"].as_str().expect("id"),
        private["id"].as_str().expect("id"),
    );
    let page = search(&c, &s, None, &[("q", "rehearsal"), ("type", "asset")]).await;
    assert_eq!(ids(&page.json), [public.to_string()], "{}", page.text);
    assert_eq!(
        hit(&page.json, public)["url"],
        format!("/api/v1/assets/{public}")
    );
    let mut mine = found(&c, &s, Some(&caster), "rehearsal").await;
    mine.sort();
    let mut want = vec![public.to_string(), private.to_string()];
    want.sort();
    assert_eq!(mine, want);
    assert_eq!(
        found(&c, &s, Some(&watcher), "rehearsal").await,
        [public.to_string()]
    );
    let a = call(
        &c,
        "DELETE",
        &s.url(&format!("/api/v1/assets/{public}")),
        Some(&caster),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text);
    assert!(found(&c, &s, None, "rehearsal").await.is_empty());

    // A deleted stream disappears.
    let a = call(
        &c,
        "DELETE",
        &s.url("/api/v1/streams/cafe"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text);
    assert!(found(&c, &s, Some(&admin), "cafe").await.is_empty());

    // Pages.
    for i in 0..5 {
        stream(
            &c,
            &s,
            &admin,
            json!({"slug": format!("pool-{i}"), "title": format!("Pool cam {i}")}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("q", "pool".to_string()), ("limit", "2".to_string())];
        if let Some(cur) = &cursor {
            query.push(("cursor", cur.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = search(&c, &s, None, &query).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(ids(&page.json));
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(seen.len() < 10, "paging does not end");
    }
    assert_eq!(seen.len(), 5);
    seen.dedup();
    assert_eq!(seen.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_hostile_queries_get_answers_never_a_500() {
    let s = Server::start_with_env(&config(), &env());
    let c = client();
    let (admin, _, _) = tokens(&c, &s).await;
    stream(
        &c,
        &s,
        &admin,
        json!({"slug": "near", "title": "NEAR or AND",
        "description": "a \"quoted\" * star"}),
    )
    .await;

    let long = "x".repeat(201);
    for (query, what) in [
        (vec![("q", "")], "empty q"),
        (vec![("q", "   ")], "blank q"),
        (vec![("q", long.as_str())], "201 characters"),
        (vec![], "no q"),
        (vec![("q", "a"), ("type", "video")], "unknown type"),
        (
            vec![("q", "a"), ("projection", "cube")],
            "unknown projection",
        ),
        (vec![("q", "a"), ("live", "maybe")], "live not a boolean"),
        (vec![("q", "a"), ("limit", "0")], "limit 0"),
        (vec![("q", "a"), ("limit", "101")], "limit 101"),
        (vec![("q", "a"), ("cursor", "abc")], "bad cursor"),
        (vec![("q", "a"), ("sort", "new")], "unknown parameter"),
    ] {
        assert_problem(&search(&c, &s, None, &query).await, 400, what);
    }
    let exactly_200 = "é".repeat(200);
    for q in [
        "\"",
        "*",
        "NEAR(",
        "a OR",
        "OR",
        "NOT",
        "-",
        "a -b",
        "(",
        ")",
        "title:x",
        "^x",
        "\"\"\"",
        "a\"b",
        "* *",
        "'",
        "%",
        "\\",
        "\u{0}",
        "🎥 360°",
        "東京",
        "\u{202e}abc",
        "near(or and",
        exactly_200.as_str(),
    ] {
        for token in [None, Some(admin.as_str())] {
            let a = search(&c, &s, token, &[("q", q)]).await;
            assert_eq!(a.status, 200, "{q:?}: {}", a.text);
            assert!(a.json["items"].is_array(), "{q:?}: {}", a.text);
        }
    }
    assert_eq!(found(&c, &s, None, "NEAR(").await.len(), 1);
    assert_eq!(found(&c, &s, None, "a OR").await.len(), 1);
    assert_eq!(found(&c, &s, None, "\"quoted\" *").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_sorts_before_an_offline_one() {
    let s = Server::start_with_env(&config(), &env());
    let c = client();
    let (admin, _, _) = tokens(&c, &s).await;
    // The offline one matches better by words (bm25 favours the shorter text with the
    // word), so only the live state can put the other first. (Other streams make
    // "arena" a rare word, so that bm25 tells the two apart.)
    for slug in ["pool", "hall", "gym"] {
        stream(&c, &s, &admin, json!({ "slug": slug })).await;
    }
    let (offline, _) = stream(&c, &s, &admin, json!({"slug": "arena", "title": "Arena"})).await;
    let (live, key) = stream(
        &c,
        &s,
        &admin,
        json!({"slug": "arena-north",
        "title": "Arena north side camera",
        "description": "A camera on the north side, above the stands"}),
    )
    .await;
    assert_eq!(
        found(&c, &s, None, "arena").await,
        [offline.as_str(), live.as_str()]
    );

    let _publisher = Publisher::start(source_file(), &s.publish_url(&key), true);
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        // Streams only: the live session's recording is an asset found by the same
        // words.
        let page = search(&c, &s, None, &[("q", "arena"), ("type", "stream")]).await;
        assert_eq!(page.status, 200, "{}", page.text);
        if hit(&page.json, &live)["live"] == true {
            break page;
        }
        assert!(Instant::now() < deadline, "never live: {}", page.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        ids(&page.json),
        [live.as_str(), offline.as_str()],
        "{}",
        page.text
    );
    let page = search(&c, &s, None, &[("q", "arena"), ("live", "true")]).await;
    assert_eq!(ids(&page.json), [live.as_str()], "{}", page.text);
    let streams = [("q", "arena"), ("live", "false"), ("type", "stream")];
    let page = search(&c, &s, None, &streams).await;
    assert_eq!(ids(&page.json), [offline], "{}", page.text);
}
