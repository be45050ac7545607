//! The output folder belongs to someone else while we write as root (the
//! image's case): its owner must not be able to make us write, chmod or chown
//! anything outside it, and every run leaves one consistent set of results.
//! These tests use the library's `artifacts` API directly.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{as_root, names_in};
use rust_flamegraph::artifacts::{OutDir, FOLDED, PERF_DATA, STAGING_PREFIX, SVG};
use rust_flamegraph::exit::Exit;

/// The uid and gid of the output folder's owner in these tests.
const USER: u32 = 1234;

/// A folder `out` owned by USER, inside a root-owned base that USER can
/// traverse, next to a root-only victim file and victim folder.
struct Scene {
    base: tempfile::TempDir,
}

impl Scene {
    fn new(owner: Option<u32>) -> Scene {
        let base = tempfile::tempdir().unwrap();
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let scene = Scene { base };
        fs::create_dir(scene.out()).unwrap();
        if let Some(id) = owner {
            std::os::unix::fs::chown(scene.out(), Some(id), Some(id)).unwrap();
        }
        fs::write(scene.victim(), "secret").unwrap();
        fs::set_permissions(scene.victim(), fs::Permissions::from_mode(0o600)).unwrap();
        fs::create_dir(scene.victim_dir()).unwrap();
        fs::set_permissions(scene.victim_dir(), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(scene.victim_dir().join("keep"), "kept").unwrap();
        scene
    }

    fn out(&self) -> PathBuf {
        self.base.path().join("out")
    }

    fn victim(&self) -> PathBuf {
        self.base.path().join("victim")
    }

    fn victim_dir(&self) -> PathBuf {
        self.base.path().join("victim-dir")
    }

    /// The victims are exactly as created.
    fn assert_victims_untouched(&self) {
        let meta = fs::symlink_metadata(self.victim()).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o7777, 0o600, "victim's mode changed");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "victim's owner changed");
        assert_eq!(fs::read_to_string(self.victim()).unwrap(), "secret");
        let meta = fs::symlink_metadata(self.victim_dir()).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o700, "victim folder's mode changed");
        assert_eq!((meta.uid(), meta.gid()), (0, 0));
        assert_eq!(
            names_in(&self.victim_dir()),
            ["keep"],
            "written into the victim folder"
        );
    }
}

fn commit_pair(out: &OutDir, folded: &str, svg: &str) -> Vec<PathBuf> {
    let mut set = out.start_set().unwrap();
    set.add(FOLDED, |w| w.write_all(folded.as_bytes())).unwrap();
    set.add(SVG, |w| w.write_all(svg.as_bytes())).unwrap();
    set.commit().unwrap()
}

/// `name` in `dir` is a regular file (not a symlink) with `content`, mode
/// 0644, owned by `owner`.
fn assert_result(dir: &Path, name: &str, content: &str, owner: (u32, u32)) {
    let path = dir.join(name);
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file(), "{name} is not a regular file");
    assert_eq!(meta.mode() & 0o7777, 0o644, "{name}'s mode");
    assert_eq!((meta.uid(), meta.gid()), owner, "{name}'s owner");
    assert_eq!(fs::read_to_string(&path).unwrap(), content);
}

/// As USER (this thread only: Linux credentials are per thread), until
/// `stop` or `deadline`: renames every hidden entry of `out` away and puts a
/// symlink to a victim in its place; also tries the same inside hidden
/// folders. Returns how many entries it swapped.
fn attack(out: PathBuf, victims: [PathBuf; 2], stop: Arc<AtomicBool>, deadline: Instant) -> usize {
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    let gid = rustix::fs::Gid::from_raw(USER);
    let uid = rustix::fs::Uid::from_raw(USER);
    set_thread_groups(&[gid]).unwrap();
    set_thread_res_gid(gid, gid, gid).unwrap();
    set_thread_res_uid(uid, uid, uid).unwrap();
    assert!(fs::write("/root-only-probe", "").is_err(), "still root");
    let mut swaps = 0;
    let mut n = 0;
    let mut swap = |path: &Path| {
        n += 1;
        let away = out.join(format!("stolen-{n}"));
        if fs::rename(path, &away).is_ok() {
            let _ = std::os::unix::fs::symlink(&victims[n % 2], path);
            swaps += 1;
            Some(away)
        } else {
            None
        }
    };
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let Ok(entries) = fs::read_dir(&out) else {
            continue;
        };
        for entry in entries.flatten() {
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            let symlink = entry.file_type().is_ok_and(|t| t.is_symlink());
            if !hidden || symlink {
                continue;
            }
            // A staging folder is root's and 0700: reading it fails.
            if let Ok(inner) = fs::read_dir(entry.path()) {
                for file in inner.flatten() {
                    swap(&file.path());
                }
            }
            swap(&entry.path());
        }
    }
    swaps
}

#[test]
#[ignore = "needs root: cargo test -- --include-ignored"]
fn the_folder_owner_swapping_temporary_files_for_symlinks_reaches_nothing_outside() {
    if !as_root("root (to chown the folder and attack as another user)") {
        return;
    }
    let scene = Scene::new(Some(USER));
    let out = OutDir::prepare(&scene.out()).unwrap();
    assert_eq!(
        out.owner(),
        Some((USER, USER)),
        "files go to the folder's owner"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_millis(2500);
    let attacker = {
        let (out, stop) = (scene.out(), stop.clone());
        let victims = [scene.victim(), scene.victim_dir()];
        std::thread::spawn(move || attack(out, victims, stop, deadline))
    };
    let mut sets = 0;
    while sets < 200 && Instant::now() < deadline {
        let folded = format!("main;work {sets}\n");
        let svg = format!("<svg>{sets}</svg>");
        let mut set = out.start_set().unwrap();
        set.add(FOLDED, |w| w.write_all(folded.as_bytes())).unwrap();
        set.add(SVG, |w| {
            // Rendering takes a while: a window for the attacker.
            std::thread::sleep(Duration::from_micros(500));
            w.write_all(svg.as_bytes())
        })
        .unwrap();
        set.commit().unwrap();
        scene.assert_victims_untouched();
        assert_result(&scene.out(), FOLDED, &folded, (USER, USER));
        assert_result(&scene.out(), SVG, &svg, (USER, USER));
        sets += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let swaps = attacker.join().unwrap();
    scene.assert_victims_untouched();
    assert!(sets >= 20, "only {sets} sets in 2.5 s");
    assert!(
        swaps > 0,
        "the attacker never caught a temporary name: the test proves nothing"
    );
    eprintln!("{sets} sets written, {swaps} entries swapped for symlinks");
    // The next run's cleanup does not follow the attacker's symlinks either.
    OutDir::prepare(&scene.out()).unwrap();
    scene.assert_victims_untouched();
}

#[test]
#[ignore = "needs root: cargo test -- --include-ignored"]
fn a_folder_moved_away_and_replaced_by_a_symlink_does_not_redirect_the_results() {
    let scene = Scene::new(None);
    let other = scene.base.path().join("other");
    fs::create_dir(&other).unwrap();
    let out = OutDir::prepare(&scene.out()).unwrap();
    let moved = scene.base.path().join("moved");
    fs::rename(scene.out(), &moved).unwrap();
    std::os::unix::fs::symlink(&other, scene.out()).unwrap();

    let mut set = out.start_set().unwrap();
    set.add(FOLDED, |w| w.write_all(b"main 1\n")).unwrap();
    set.add(SVG, |w| w.write_all(b"<svg/>")).unwrap();
    set.add("extra.txt", |w| w.write_all(b"x")).unwrap();
    set.commit().unwrap();

    assert!(
        names_in(&other).is_empty(),
        "written through the symlink: {:?}",
        names_in(&other)
    );
    assert_eq!(
        names_in(&moved),
        ["extra.txt", SVG, FOLDED],
        "results in the folder we opened"
    );
    assert_eq!(fs::read_to_string(moved.join(FOLDED)).unwrap(), "main 1\n");
    scene.assert_victims_untouched();
}

#[test]
fn a_failing_second_file_leaves_the_earlier_pair_untouched_and_no_temporary() {
    let scene = Scene::new(None);
    let out = OutDir::prepare(&scene.out()).unwrap();
    commit_pair(&out, "old folded", "old svg");

    let mut set = out.start_set().unwrap();
    set.add(FOLDED, |w| w.write_all(b"new folded")).unwrap();
    let err = set
        .add(SVG, |w| {
            w.write_all(&[b'x'; 200_000])?;
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        })
        .unwrap_err();
    assert_eq!(Exit::of(&err), Exit::Output);
    let message = err.to_string();
    assert!(message.contains("No space left on device"), "{message}");
    assert!(
        message.contains(&format!("nothing in {} was changed", scene.out().display())),
        "{message}"
    );
    assert!(message.contains("Free some space"), "{message}");
    let err = set.commit().unwrap_err().to_string();
    assert!(err.contains("was changed"), "{err}");

    assert_eq!(
        fs::read_to_string(scene.out().join(FOLDED)).unwrap(),
        "old folded"
    );
    assert_eq!(
        fs::read_to_string(scene.out().join(SVG)).unwrap(),
        "old svg"
    );
    assert_eq!(names_in(&scene.out()), [SVG, FOLDED], "no temporary left");
}

#[test]
#[ignore = "needs root: cargo test -- --include-ignored"]
fn a_set_without_perf_data_removes_the_earlier_runs_perf_data() {
    let root = rustix::process::geteuid().is_root();
    let scene = Scene::new(root.then_some(USER));
    let owner = if root {
        (USER, USER)
    } else {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    };
    let out = OutDir::prepare(&scene.out()).unwrap();
    let data = scene.base.path().join("perf.data.recorded");
    fs::write(&data, "PERFILE2 samples").unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(scene.out().join("notes.txt"), "the user's").unwrap();

    let mut set = out.start_set().unwrap();
    set.add(FOLDED, |w| w.write_all(b"kept run")).unwrap();
    set.add(SVG, |w| w.write_all(b"<svg/>")).unwrap();
    set.add_copy(&data, PERF_DATA).unwrap();
    let written = set.commit().unwrap();
    assert_eq!(
        written,
        [FOLDED, SVG, PERF_DATA].map(|n| scene.out().join(n))
    );
    // --keep-perf-data: readable and owned like the other results.
    assert_result(&scene.out(), PERF_DATA, "PERFILE2 samples", owner);
    assert_result(&scene.out(), FOLDED, "kept run", owner);

    commit_pair(&out, "next run", "<svg/>");
    assert_eq!(names_in(&scene.out()), [SVG, "notes.txt", FOLDED]);

    // A symlink named like a result is removed itself, never followed.
    std::os::unix::fs::symlink(scene.victim(), scene.out().join(PERF_DATA)).unwrap();
    commit_pair(&out, "third run", "<svg/>");
    assert_eq!(names_in(&scene.out()), [SVG, "notes.txt", FOLDED]);
    scene.assert_victims_untouched();
}

#[test]
#[ignore = "needs root: cargo test -- --include-ignored"]
fn staging_folders_of_dead_runs_are_removed_and_live_ones_kept() {
    let scene = Scene::new(None);
    let dir = scene.out();
    // A run killed while writing perf.data: its flock died with it.
    let dead = dir.join(format!("{STAGING_PREFIX}999999.00000000deadbeef"));
    fs::create_dir(&dead).unwrap();
    fs::write(dead.join(PERF_DATA), vec![0u8; 1 << 20]).unwrap();
    fs::write(dead.join(SVG), "half an svg").unwrap();
    // A live run of another container (its pid means nothing here): it holds the lock.
    let live = dir.join(format!("{STAGING_PREFIX}7.00000000000a11fe"));
    fs::create_dir(&live).unwrap();
    fs::write(live.join(SVG), "being written").unwrap();
    let held = fs::File::open(&live).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    // Lookalikes that are not folders: never followed.
    let trap = dir.join(format!("{STAGING_PREFIX}1.0000000000000bad"));
    std::os::unix::fs::symlink(scene.victim_dir(), &trap).unwrap();
    fs::write(dir.join(".hidden-by-the-user"), "mine").unwrap();
    // A live set of this very process.
    let other = OutDir::prepare(&dir).unwrap();
    let mut ours = other.start_set().unwrap();
    ours.add(FOLDED, |w| w.write_all(b"ours")).unwrap();

    OutDir::prepare(&dir).unwrap();

    assert!(!dead.exists(), "the dead run's staging folder is removed");
    assert_eq!(fs::read_to_string(live.join(SVG)).unwrap(), "being written");
    assert!(fs::symlink_metadata(&trap)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(dir.join(".hidden-by-the-user").exists());
    scene.assert_victims_untouched();
    ours.add(SVG, |w| w.write_all(b"ours")).unwrap();
    ours.commit().unwrap();
    assert_eq!(fs::read_to_string(dir.join(FOLDED)).unwrap(), "ours");
    drop(held);
    let stagings: Vec<_> = names_in(&dir)
        .into_iter()
        .filter(|n| n.starts_with(STAGING_PREFIX))
        .collect();
    assert_eq!(
        stagings.len(),
        2,
        "the live one and the trap remain: {stagings:?}"
    );
}

#[test]
fn an_output_path_that_is_a_file_is_named_as_such() {
    let scene = Scene::new(None);
    let file = scene.base.path().join("afile");
    fs::write(&file, "").unwrap();
    let err = OutDir::prepare(&file).unwrap_err();
    assert_eq!(Exit::of(&err), Exit::Output);
    let message = err.to_string();
    assert!(
        message.contains(&format!("{} is a file, not a folder", file.display())),
        "{message}"
    );
    assert!(message.contains("--out"), "{message}");
    assert!(!message.contains("os error 17"), "{message}");
}

#[test]
fn a_folder_locked_by_another_run_is_reported_then_waited_for() {
    let scene = Scene::new(None);
    let first = OutDir::prepare(&scene.out()).unwrap();
    let second = OutDir::prepare(&scene.out()).unwrap();
    let held = first.lock().unwrap();

    let (said, heard) = mpsc::channel();
    let (locked, acquired) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let lock = second
            .lock_reporting(|message| said.send(message.to_string()).unwrap())
            .unwrap();
        locked.send(()).unwrap();
        drop(lock);
    });
    let message = heard
        .recv_timeout(Duration::from_secs(5))
        .expect("a message, not silence");
    assert!(message.contains("another rust-flamegraph run"), "{message}");
    assert!(
        message.contains(&format!("(pid {})", std::process::id())),
        "the holder's pid: {message}"
    );
    assert!(
        message.contains(&scene.out().display().to_string()),
        "{message}"
    );
    assert!(message.contains("waiting"), "{message}");
    assert!(
        acquired.recv_timeout(Duration::from_millis(200)).is_err(),
        "got the lock while it was held"
    );
    drop(held);
    acquired
        .recv_timeout(Duration::from_secs(5))
        .expect("the lock once released");
    waiter.join().unwrap();
    // The lock is also what a commit takes: free again.
    commit_pair(&first, "a", "b");
}

/// Unmounts when dropped.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
#[ignore = "needs root (it mounts a tmpfs): cargo test -- --include-ignored"]
fn a_read_only_folder_is_refused_with_the_fix() {
    let scene = Scene::new(None);
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"])
        .arg(scene.out())
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        // Mounting needs CAP_SYS_ADMIN; the message itself has a unit test.
        common::loud("SKIPPED: cannot mount a read-only tmpfs here; this test did not run");
        return;
    }
    let _mount = Mount(scene.out());
    let err = OutDir::prepare(&scene.out()).unwrap_err();
    assert_eq!(Exit::of(&err), Exit::Output);
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "cannot write to the output folder {}",
            scene.out().display()
        )),
        "{message}"
    );
    assert!(message.contains("Read-only file system"), "{message}");
    assert!(
        message.contains("without :ro") || message.contains("remount it read-write"),
        "names the fix: {message}"
    );
}
