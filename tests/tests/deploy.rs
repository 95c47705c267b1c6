//! The systemd units under `deploy/` (SPEC §11): `systemd-analyze verify`
//! accepts them without a single complaint, and they carry the hardening
//! and the layout the README promises.

use std::process::Command;

use e2e::bin;

const UNITS: [(&str, &str); 2] = [("detector", "lookout-detector.service"), ("webserver", "lookout-webserver.service")];

fn unit_text(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_units_pass_systemd_analyze_verify_without_warnings() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("WARNING: systemd-analyze is not installed; the units were NOT verified");
        return;
    }
    let dir = e2e::temp_data_dir();
    let mut paths = Vec::new();
    for (binary, file) in UNITS {
        // verify checks that ExecStart exists: point it at this build's binary.
        let text = unit_text(file).replace(&format!("/usr/local/bin/{binary}"), &bin(binary).display().to_string());
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("write unit");
        paths.push(path);
    }
    let output = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&paths).output().expect("run");
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && complaints.trim().is_empty(), "systemd-analyze verify:\n{complaints}");
}

#[test]
fn the_units_are_hardened_share_the_state_directory_and_reload_with_sighup() {
    for (binary, file) in UNITS {
        let text = unit_text(file);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for wanted in [
            "User=lookout",
            "StateDirectory=lookout",
            "Environment=LOOKOUT_DATA_DIR=/var/lib/lookout",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "Restart=on-failure",
            "ExecReload=/bin/kill -HUP $MAINPID",
        ] {
            assert!(lines.contains(&wanted), "{file} lacks {wanted}");
        }
        assert!(lines.iter().any(|l| l.starts_with(&format!("ExecStart=/usr/local/bin/{binary} "))), "{file}");
    }
}

#[tokio::test]
async fn sighup_neither_stops_the_detector_nor_the_webserver() {
    let dir = e2e::temp_data_dir();
    let detector = e2e::Process::start("detector", &["--dry-run", "--data-dir", e2e::arg(dir.path())]);
    detector.wait_for_log("dry run: simulating cameras", std::time::Duration::from_secs(60));
    let web = e2e::Webserver::start(dir.path(), &[]);
    for (process, answer) in
        [(&detector, "reload asked: a dry run's cameras are not re-read"), (&web.process, "SIGHUP")]
    {
        let pid = nix::unistd::Pid::from_raw(process.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
        process.wait_for_log(answer, std::time::Duration::from_secs(10));
    }
    // Both still run: the webserver is ready and its detector link is up.
    let health =
        e2e::health_until(&web.url, "the detector link up after SIGHUP", |h| h["detectors"][0]["connected"] == true)
            .await;
    assert_eq!(health["detectors"][0]["connected"], true);
    let ready = reqwest::get(format!("{}/readyz", web.url)).await.expect("GET /readyz");
    assert_eq!(ready.status(), 200);
}
