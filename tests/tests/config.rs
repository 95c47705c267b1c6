//! `lookout.toml` end to end (SPEC §11): the example file in `deploy/` is
//! valid for both binaries, every class of mistake exits 2 with the file,
//! line and column, flags replace the file's values, the data directory's
//! file is found by itself, and the detector reloads its cameras on SIGHUP —
//! restarting exactly those that changed — or refuses a broken file and
//! keeps running as it was.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{Process, Webserver, arg, camera_status, health_until, run_to_end, temp_data_dir};

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/lookout.toml")
}

/// `BIN --config FILE --print-config ARGS…` with `vars` set.
fn print_config(bin: &str, file: &Path, vars: &[(&str, &str)], extra: &[&str]) -> (Option<i32>, String, String) {
    let mut command = std::process::Command::new(e2e::bin(bin));
    command.args(["--config", arg(file), "--print-config"]).args(extra).env_remove("LOOKOUT_DATA_DIR");
    for (name, value) in vars {
        command.env(name, value);
    }
    let out = command.output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_example_file_is_valid_for_both_binaries_and_prints_without_its_secrets() {
    let secret = "front-door-secret-42";
    let vars = [("FRONT_DOOR_PASSWORD", secret), ("MQTT_PASSWORD", secret)];
    for bin in ["detector", "webserver"] {
        let (code, printed, stderr) = print_config(bin, &example(), &vars, &[]);
        assert_eq!(code, Some(0), "{bin}: {stderr}");
        assert!(!printed.contains(secret), "{bin} printed the password:\n{printed}");
        assert!(printed.contains("data_dir = \"/var/lib/lookout\""), "{bin}:\n{printed}");
        // The printout is itself a valid file that says the same.
        let dir = temp_data_dir();
        let again = dir.path().join("printed.toml");
        // Secrets come back as `***`; stand-ins that parse take their place.
        let stand_ins = printed
            .replace("mqtt = \"***\"", "mqtt = \"mqtt://stand-in\"")
            .replace("webhooks = [\"***\"]", "webhooks = [\"http://stand-in/\"]")
            .replace("***", "masked");
        std::fs::write(&again, stand_ins).expect("write");
        let (code, reprinted, stderr) = print_config(bin, &again, &[], &[]);
        assert_eq!(code, Some(0), "{bin} rejects its own printout: {stderr}\n{printed}");
        assert_eq!(reprinted, printed, "{bin}");
    }
    let (_, detector, _) = print_config("detector", &example(), &[("FRONT_DOOR_PASSWORD", secret)], &[]);
    for wanted in [
        "motion_threshold = 35",
        "source = \"rtsp://viewer:***@192.168.1.20:554/stream2\"",
        "masks = [[0, 0, 1, 0.08]]",
        "labels = [\"person\"]",
        "person = 90",
        "max_disk = \"20GB\"",
    ] {
        assert!(detector.contains(wanted), "no {wanted:?} in\n{detector}");
    }
    let (_, webserver, _) = print_config("webserver", &example(), &vars, &[]);
    assert!(webserver.contains("allowed_hosts = [\"nvr.home.arpa\"]"), "{webserver}");
    assert!(webserver.contains("mqtt = \"***\"") && webserver.contains("webhooks = [\"***\"]"), "{webserver}");
    let (code, _, stderr) = print_config("webserver", &example(), &[], &[]);
    assert_eq!(code, Some(2), "a missing variable is an error");
    assert!(stderr.contains("MQTT_PASSWORD"), "{stderr}");
}

#[test]
fn both_binaries_read_the_nats_section_and_print_it_without_its_secrets() {
    let dir = temp_data_dir();
    let file = dir.path().join("cluster.toml");
    let text = "[nats]\nservers = [\"nats://lookout:${NATS_PASSWORD}@10.0.0.1:4222\", \"nats://10.0.0.2:4222\"]\n\
                node_id = \"barn\"\nreplicas = 3\ntoken = \"${NATS_TOKEN}\"\n";
    std::fs::write(&file, text).expect("write");
    let vars = [("NATS_PASSWORD", "password-secret-1"), ("NATS_TOKEN", "token-secret-2")];
    for bin in ["detector", "webserver"] {
        let (code, printed, stderr) = print_config(bin, &file, &vars, &[]);
        assert_eq!(code, Some(0), "{bin}: {stderr}");
        assert!(!printed.contains("secret-"), "{bin} printed a secret:\n{printed}");
        for wanted in [
            "servers = [\"nats://lookout:***@10.0.0.1:4222\", \"nats://10.0.0.2:4222\"]",
            "node_id = \"barn\"",
            "replicas = 3",
            "token = \"***\"",
        ] {
            assert!(printed.contains(wanted), "{bin}: no {wanted:?} in\n{printed}");
        }
    }
    // The flag's own parser checks the file's value.
    std::fs::write(&file, "[nats]\nservers = [\"nats://10.0.0.1:4222\"]\nreplicas = 9\n").expect("write");
    let (code, _, stderr) = print_config("detector", &file, &[], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cluster.toml:3:") && stderr.contains("replicas"), "{stderr}");
}

#[test]
fn flags_replace_the_files_values_and_the_data_directory_file_is_found() {
    let vars = [("FRONT_DOOR_PASSWORD", "x")];
    let (code, printed, stderr) =
        print_config("detector", &example(), &vars, &["--detect-fps", "2", "--retain-label", "car=3"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(printed.contains("detect_fps = 2\n"), "{printed}");
    assert!(
        printed.contains("car = 3") && !printed.contains("person = 90"),
        "a repeatable flag replaces the list:\n{printed}"
    );

    let dir = temp_data_dir();
    std::fs::write(dir.path().join("lookout.toml"), "[webserver]\nclient_queue = 64\n").expect("write");
    let (code, printed, stderr) = run_to_end("webserver", &["--data-dir", arg(dir.path()), "--print-config"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(printed.contains("client_queue = 64"), "{printed}");
    let (code, _, stderr) = run_to_end("webserver", &["--config", arg(&dir.path().join("absent.toml"))]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("absent.toml"), "{stderr}");
}

#[test]
fn every_kind_of_mistake_exits_2_with_the_line_and_column() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("detector", "[detector]\ndetect_fps = = 5\n", ":2:14:", "extra `=`"),
        ("detector", "[detector]\ndetect_fsp = 5\n", ":2:1:", "unknown key `detect_fsp` in [detector]"),
        ("detector", "[cameras.door]\nsource = \"x\"\nlables = [\"person\"]\n", ":3:1:", "unknown key `lables`"),
        ("webserver", "[webserver]\nbind = 8000\n", ":2:8:", "invalid value \"8000\""),
        ("detector", "[motion]\nthreshold = \"high\"\n", ":2:13:", "invalid value \"high\""),
        ("detector", "[detector]\nloop = \"yes\"\n", ":2:8:", "expected true or false, found string"),
        ("detector", "[objects]\nlabels = [\"persn\"]\n", ":2:10:", "\"persn\" is not a label"),
        ("detector", "[cameras.door]\nmasks = [[0, 0, 2, 1]]\n", ":2:10:", "[cameras.door] masks"),
        ("detector", "[cameras.\"bad id\"]\nsource = \"x\"\n", ":2:10:", "invalid camera id"),
        ("detector", "[retain]\nmax_disk = \"lots\"\n", ":2:12:", "[retain] max_disk"),
        (
            "webserver",
            "[webserver]\ntoken = \"${LOOKOUT_TEST_UNSET_TOKEN}\"\n",
            ":2:9:",
            "LOOKOUT_TEST_UNSET_TOKEN is not set",
        ),
        ("webserver", "[outputs]\nmqtt = \"broker:1883\"\n", ":2:8:", "must start with mqtt://"),
        ("webserver", "[outputs]\nwebhooks = [\"https://h/x colour=red\"]\n", ":2:13:", "unknown option"),
        ("webserver", "[webservr]\nbind = \"127.0.0.1:1\"\n", ":1:2:", "unknown key `webservr`"),
        // Secrets are not repeated in the message.
        ("detector", "[cameras.\"bad id\"]\nsource = \"rtsp://u:hunter2@cam\"\n", ":2:10:", "u:***@cam"),
        ("webserver", "[webserver]\ntoken = \"hunter2\"\n", ":2:9:", "[webserver] token: invalid value: "),
        (
            "webserver",
            "[outputs]\nmqtt = \"mqtt://u:hunter2@b:0\"\n",
            ":2:8:",
            "[outputs] mqtt: invalid value: bad port",
        ),
    ];
    let dir = temp_data_dir();
    for (bin, text, position, reason) in cases {
        let file = dir.path().join("lookout.toml");
        std::fs::write(&file, text).expect("write");
        let (code, stdout, stderr) = print_config(bin, &file, &[], &[]);
        assert_eq!(code, Some(2), "{bin} {text:?}: {stdout}{stderr}");
        let wanted = format!("{}{position}", file.display());
        assert!(stderr.contains(&wanted), "{bin} {text:?}: no {wanted:?} in {stderr:?}");
        assert!(stderr.contains(reason), "{bin} {text:?}: no {reason:?} in {stderr:?}");
        assert!(!stderr.contains("hunter2"), "{bin} {text:?} repeats a secret: {stderr:?}");
    }
}

/// A live synthetic camera: a gray frame with a box moving across it.
fn moving(colour: &str) -> String {
    format!(
        "lavfi:color=c={colour}:s=320x180:r=10[bg];color=c=white:s=40x40:r=10[fg];\
         [bg][fg]overlay=x='mod(t*60,280)':y=70"
    )
}

fn cameras_file(cameras: &[(&str, &str)]) -> String {
    let mut text = String::from("[objects]\nno_objects = true\n");
    for (id, source) in cameras {
        text.push_str(&format!("[cameras.{id}]\nsource = \"{source}\"\n"));
    }
    text
}

fn hangup(process: &Process) {
    let pid = nix::unistd::Pid::from_raw(process.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
}

/// How many times the camera's source came up (one "camera up" per start).
fn starts(detector: &Process, camera: &str) -> usize {
    let needle = format!("camera={camera}");
    detector.logs().iter().filter(|l| l.contains("camera up") && l.contains(&needle)).count()
}

fn frames(health: &serde_json::Value, camera: &str) -> u64 {
    camera_status(health, camera)["frames"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn sighup_adds_removes_and_restarts_exactly_the_cameras_that_changed() {
    let dir = temp_data_dir();
    let file = dir.path().join("lookout.toml");
    let (gray, dark, light) = (moving("gray"), moving("0x303030"), moving("0xa0a0a0"));
    std::fs::write(&file, cameras_file(&[("steady", &gray), ("leaving", &gray), ("changing", &gray)])).expect("write");
    let detector = Process::start(
        "detector",
        &[
            "--config",
            arg(&file),
            "--data-dir",
            arg(dir.path()),
            "--heartbeat-secs",
            "0.5",
            "--episode-end-secs",
            "0.5",
        ],
    );
    let web = Webserver::start(dir.path(), &[]);
    web.wait_for_detector();
    health_until(&web.url, "three cameras delivering frames", |h| {
        ["steady", "leaving", "changing"].iter().all(|c| frames(h, c) > 0)
    })
    .await;

    // Sample the untouched camera's frame counter across the reload: every
    // heartbeat (twice a second) must show more frames than the one before.
    let url = web.url.clone();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            let health: serde_json::Value =
                reqwest::get(format!("{url}/api/health")).await.expect("health").json().await.expect("JSON");
            samples.push(frames(&health, "steady"));
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        samples
    });
    std::fs::write(&file, cameras_file(&[("steady", &gray), ("changing", &dark), ("arriving", &light)]))
        .expect("write");
    hangup(&detector);
    let reloaded = detector.wait_for_log("cameras reloaded", Duration::from_secs(30));
    for part in ["added=[\"arriving\"]", "removed=[\"leaving\"]", "changed=[\"changing\"]", "unchanged=1"] {
        assert!(reloaded.contains(part), "{part} not in {reloaded:?}");
    }
    let health = health_until(&web.url, "the new camera up and the removed one ended", |h| {
        frames(h, "arriving") > 0 && camera_status(h, "leaving")["state"] == "ended"
    })
    .await;
    assert_eq!(camera_status(&health, "steady")["state"], "up", "{health:#}");
    // Listed as removed, which outputs read as "no longer a camera".
    assert_eq!(camera_status(&health, "leaving")["removed"], true, "{health:#}");
    assert_eq!(camera_status(&health, "steady")["removed"], false, "{health:#}");
    let samples = sampler.await.expect("sampler");
    assert!(samples.windows(2).all(|w| w[1] > w[0]), "the untouched camera paused: {samples:?}");
    detector.wait_for_log_count("camera up", 5, Duration::from_secs(30));
    assert_eq!(
        [
            starts(&detector, "steady"),
            starts(&detector, "leaving"),
            starts(&detector, "changing"),
            starts(&detector, "arriving")
        ],
        [1, 1, 2, 1],
        "only the changed camera restarted, the added one started"
    );
    // The removed camera's events all ended (none is left active).
    let leaving: Vec<_> = e2e::current_events(dir.path()).into_iter().filter(|e| e.camera_id == "leaving").collect();
    assert!(leaving.iter().all(|e| e.state == shared::EventState::Ended), "{leaving:?}");

    // A broken file is refused: nothing restarts, nothing stops.
    for broken in ["[cameras.steady]\nsource = = 1\n", "[cameras.steady]\nsource = \"/no/such/clip.mp4\"\n"] {
        std::fs::write(&file, broken).expect("write");
        let refusals = detector.logs().iter().filter(|l| l.contains("reload refused")).count();
        hangup(&detector);
        detector.wait_for_log_count("reload refused", refusals + 1, Duration::from_secs(30));
    }
    let refused = detector.logs().into_iter().filter(|l| l.contains("reload refused")).collect::<Vec<_>>();
    assert!(refused[0].contains("lookout.toml:2:10"), "{refused:?}");
    assert!(refused[1].contains("/no/such/clip.mp4"), "{refused:?}");
    let before = health_until(&web.url, "a heartbeat", |_| true).await;
    let after = health_until(&web.url, "the cameras still running", |h| {
        ["steady", "changing", "arriving"].iter().all(|c| frames(h, c) > frames(&before, c))
    })
    .await;
    assert_eq!(camera_status(&after, "steady")["state"], "up");
    assert_eq!(detector.logs().iter().filter(|l| l.contains("camera up")).count(), 5, "nothing restarted");
}

#[test]
fn watch_config_reloads_when_the_file_changes() {
    let dir = temp_data_dir();
    let file = dir.path().join("lookout.toml");
    let gray = moving("gray");
    std::fs::write(&file, cameras_file(&[("first", &gray)])).expect("write");
    let detector =
        Process::start("detector", &["--config", arg(&file), "--data-dir", arg(dir.path()), "--watch-config"]);
    detector.wait_for_log("camera up", Duration::from_secs(30));
    std::fs::write(&file, cameras_file(&[("first", &gray), ("second", &gray)])).expect("write");
    let reloaded = detector.wait_for_log("cameras reloaded", Duration::from_secs(30));
    assert!(reloaded.contains("added=[\"second\"]") && reloaded.contains("unchanged=1"), "{reloaded}");
    detector.wait_for_log_count("camera up", 2, Duration::from_secs(30));
}
