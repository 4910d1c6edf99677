//! Every committed input of every fuzz target, run on each test run: the seeds each target
//! starts from and every input a fuzzer once found a failure with (`corpus/<target>/`).
//! A target without a corpus directory, or a directory without a target, fails here.

use std::path::Path;

#[test]
fn every_committed_input_holds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .expect("the corpus directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    dirs.sort();
    let mut names: Vec<String> = coffer_fuzz::TARGETS
        .iter()
        .map(|t| t.name.to_owned())
        .collect();
    names.sort();
    assert_eq!(dirs, names, "one corpus directory per target");
    for target in coffer_fuzz::TARGETS {
        let mut files: Vec<_> = std::fs::read_dir(root.join(target.name))
            .expect("the target's corpus")
            .map(|e| e.expect("an entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no seeds", target.name);
        for f in files {
            let data = std::fs::read(&f).expect("an input");
            let run = std::panic::catch_unwind(|| (target.run)(&data));
            assert!(run.is_ok(), "{} fails on {}", target.name, f.display());
        }
    }
}
