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

#[test]
fn a_meta_file_beside_a_table_is_confined_too() {
    let daemon = Daemon::start("confined-meta");
    let root = daemon.home.scratch.0.canonicalize().expect("scratch");
    let job = root.join("job");
    std::fs::create_dir_all(&job).expect("dirs");
    std::fs::create_dir_all(root.join("private")).expect("dirs");
    let precious = root.join("private/precious.txt");
    std::fs::write(&precious, "keep me\n").expect("precious");
    std::fs::write(job.join("t.csv"), "x\n1\n2\n").expect("data");
    let mut transform = Transform::connect(&daemon.home.config()).expect("connect");

    // Read: a .meta that is a link out is refused, not followed.
    std::os::unix::fs::symlink(&precious, job.join("t.meta")).expect("link");
    refused(
        &mut transform,
        &plan(
            &job,
            r#"{"0": {"tasks": {"open_array": {"filename": "t", "path": "."}}}}"#,
        ),
        "symbolic link",
    );
    // Write: a .dat's .meta that is a link out is not written through.
    std::fs::write(job.join("u.csv"), "x\n1\n2\n").expect("data");
    std::os::unix::fs::symlink(&precious, job.join("out.meta")).expect("link");
    refused(
        &mut transform,
        &plan(
            &job,
            r#"{"0": {"tasks": [{"open_array": {"filename": "u", "path": "."}},
                               {"write": {"filename": "out", "path": ".", "extension": "dat"}}]}}"#,
        ),
        "symbolic link",
    );
    assert_eq!(
        std::fs::read_to_string(&precious).expect("read"),
        "keep me\n",
        "nothing outside was written"
    );
    assert!(
        !job.join("out.dat").exists(),
        "a .dat left without its .meta"
    );
}

#[test]
fn a_link_swapped_in_while_jobs_read_never_leads_out() {
    let daemon = Daemon::start("confined-race");
    let root = daemon.home.scratch.0.canonicalize().expect("scratch");
    let job = root.join("job");
    std::fs::create_dir_all(job.join("data")).expect("dirs");
    std::fs::create_dir_all(root.join("private")).expect("dirs");
    std::fs::write(root.join("private/secret.csv"), "secret\n42\n").expect("secret");
    let file = job.join("data/t.csv");
    let staged = job.join("staged.csv");
    let link = job.join("link.csv");
    std::os::unix::fs::symlink(root.join("private/secret.csv"), &link).expect("link");
    let read = plan(
        &job,
        r#"{"0": {"tasks": {"open_array": {"filename": "t", "path": "data"}}}}"#,
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (mut read_fine, mut escapes) = (0, 0);
    std::thread::scope(|scope| {
        // Swaps the file for a link out and back, as fast as it can: each
        // swap is one rename, so the path is always one or the other.
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::fs::write(&staged, "x\n1\n").expect("stage");
                std::fs::rename(&staged, &file).expect("swap in the file");
                let twin = job.join("twin.csv");
                let _ = std::fs::remove_file(&twin);
                std::os::unix::fs::symlink(root.join("private/secret.csv"), &twin).expect("link");
                std::fs::rename(&twin, &file).expect("swap in the link");
            }
        });
        let mut transform = Transform::connect(&daemon.home.config()).expect("connect");
        for _ in 0..400 {
            if let Ok(table) = transform.execute(&read) {
                read_fine += 1;
                if table.column("secret").is_some() {
                    escapes += 1;
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(escapes, 0, "{escapes} of 400 jobs read the file outside");
    eprintln!("{read_fine} of 400 jobs read the file between swaps");
}
