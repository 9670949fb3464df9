//! Without the local AWS world, an end-to-end test must say so plainly and name the
//! commands that run it, not panic with a bare "Connection refused". Its own test binary
//! (its own process), because it points FERRY_WORLD_JSON elsewhere.

use ferry_e2e::World;

fn world_json(name: &str, body: Option<&str>) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-e2e-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("world.json");
    if let Some(body) = body {
        std::fs::write(&path, body).unwrap();
    }
    path
}

fn connect_message(path: &std::path::Path) -> String {
    std::env::set_var("FERRY_WORLD_JSON", path);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(World::connect());
    }))
    .expect_err("connect must fail without a world");
    panic.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn without_the_world_the_tests_say_so_and_how_to_run_them() {
    std::panic::set_hook(Box::new(|_| {})); // the expected panics, caught below: no noise
                                            // No world.json at all (never started), then a stale one whose port answers nothing.
    let missing = connect_message(&world_json("missing", None));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // bound and dropped: nothing listens there now
    let stale = connect_message(&world_json(
        "stale",
        Some(&format!(
            r#"{{"endpoint": "http://127.0.0.1:{port}", "region": "us-east-1",
                 "hubAccountId": "123456789012", "stateMachines": {{}}}}"#
        )),
    ));
    for message in [missing, stale] {
        assert!(
            message.contains("the local AWS world is not up"),
            "{message}"
        );
        assert!(
            message.contains("make test") && message.contains("make local-up"),
            "{message}"
        );
        assert!(!message.starts_with("connect "), "{message}");
    }
}
