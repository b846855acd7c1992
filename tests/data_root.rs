//! File tasks through a real daemon stay under the job's folder, narrowed
//! by the daemon's `data_root`: `..`, absolute paths and symbolic links
//! that lead out are refused before a byte is read or written. Jobs are
//! sent as plans (no client-side file check), so the task node is what
//! refuses them.

mod common;

use common::{Daemon, Home};
use rtl_client::{Error, Transform};
use rtl_dsl::Plan;
use std::path::Path;

fn plan(dir: &Path, job: &str) -> Plan {
    Plan::parse(job, "<test>", dir.to_path_buf()).expect("plan")
}

fn refused(transform: &mut Transform, plan: &Plan, why: &str) {
    match transform.execute(plan) {
        Err(Error::Job(failure)) => {
            assert!(failure.message.contains(why), "{failure}");
            assert!(failure.task.is_some(), "names the task: {failure}");
        }
        Ok(t) => panic!("ran and gave {} rows; expected a refusal ({why})", t.rows()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn file_tasks_stay_under_the_job_folder() {
    let daemon = Daemon::start("confined");
    let root = daemon.home.scratch.0.canonicalize().expect("scratch");
    let job = root.join("job");
    std::fs::create_dir_all(job.join("data")).expect("dirs");
    std::fs::create_dir_all(root.join("private")).expect("dirs");
    std::fs::write(root.join("private/secret.csv"), "x\n42\n").expect("secret");
    std::fs::write(job.join("data/ok.csv"), "x\n1\n2\n").expect("data");
    std::os::unix::fs::symlink(root.join("private"), job.join("data/peek")).expect("link");
    let mut transform = Transform::connect(&daemon.home.config()).expect("connect");

    let read = |path: &str, file: &str| {
        format!(
            r#"{{"0": {{"tasks": {{"open_array": {{"filename": "{file}", "path": "{path}"}}}}}}}}"#
        )
    };
    let ok = transform
        .execute(&plan(&job, &read("data", "ok")))
        .expect("inside the folder");
    assert_eq!(ok.rows(), 2);
    refused(
        &mut transform,
        &plan(&job, &read("../private", "secret")),
        "by `..`",
    );
    let absolute = root.join("private").display().to_string();
    refused(
        &mut transform,
        &plan(&job, &read(&absolute, "secret")),
        "an absolute path",
    );
    refused(
        &mut transform,
        &plan(&job, &read("data/peek", "secret")),
        "through a symbolic link",
    );

    let write = r#"{"0": {"tasks": [{"open_array": {"filename": "ok", "path": "data"}},
                                    {"write": {"filename": "stolen", "path": "../private"}}]}}"#;
    refused(&mut transform, &plan(&job, write), "by `..`");
    assert!(
        !root.join("private/stolen.csv").exists(),
        "nothing written outside"
    );
    let write = r#"{"0": {"tasks": [{"open_array": {"filename": "ok", "path": "data"}},
                                    {"write": {"filename": "planted", "path": "data/peek"}}]}}"#;
    refused(
        &mut transform,
        &plan(&job, write),
        "through a symbolic link",
    );
    assert!(
        !root.join("private/planted.csv").exists(),
        "nothing written through the link"
    );
}

#[test]
fn data_root_narrows_what_jobs_may_touch() {
    let home = Home::new("data-root");
    let root = home.scratch.0.canonicalize().expect("scratch");
    let allowed = root.join("allowed");
    let inside = allowed.join("job");
    let outside = root.join("job");
    for dir in [&inside, &outside] {
        std::fs::create_dir_all(dir).expect("dirs");
        std::fs::write(dir.join("d.csv"), "x\n1\n").expect("data");
    }
    let daemon = Daemon::start_in(home.with("RTL_DATA_ROOT", allowed.to_str().expect("path")));
    let mut transform = Transform::connect(&daemon.home.config()).expect("connect");
    let job = r#"{"0": {"tasks": {"open_array": {"filename": "d"}}}}"#;
    assert_eq!(
        transform
            .execute(&plan(&inside, job))
            .expect("inside")
            .rows(),
        1
    );
    refused(
        &mut transform,
        &plan(&outside, job),
        "outside the daemon's data_root",
    );
}
