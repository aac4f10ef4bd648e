//! Every rule pack under `pipelines/rules/` passes its data-driven tests, and every rule has a case that
//! fires and a case that stays silent. Refused rules in `tests/data/refused_rules/` fail to load with the
//! message and line their first comment names.

use vigil_pipeline::rule_tests::run_rule_tests;
use vigil_tests::repo;

#[test]
fn every_pack_passes_its_rule_tests() {
    let root = repo().join("pipelines/rules");
    let mut dirs: Vec<_> =
        std::fs::read_dir(&root).expect("pipelines/rules").flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let report = rt.block_on(run_rule_tests(&dirs, false)).expect("rule tests load");
    assert!(report.passed(), "{report}");
    let pack = vigil_rules::load_rules(&dirs).expect("rules load");
    assert!(pack.rules.len() >= 30, "the SOC 2 pack has at least 30 rules");
    for rule in &pack.rules {
        let cases: Vec<_> = report.cases.iter().filter(|c| c.rule == rule.id).collect();
        assert!(cases.iter().any(|c| !c.expected.is_empty()), "{}: no case where the rule fires", rule.id);
        assert!(cases.iter().any(|c| c.expected.is_empty()), "{}: no case where the rule stays silent", rule.id);
        assert!(
            !rule.criteria.is_empty() && !rule.description.is_empty() && !rule.remediation.is_empty(),
            "{}: header incomplete",
            rule.id
        );
    }
}

#[test]
fn refused_rules_name_file_line_and_reason() {
    let dir = repo().join("tests/data/refused_rules");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("refused_rules").flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 5);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("-- expect-error: "))
            .expect("first line is -- expect-error: ...");
        let scratch = tempfile::tempdir().expect("tempdir");
        let copy = scratch.path().join(file.file_name().expect("name"));
        std::fs::write(&copy, &text).expect("write");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let message = match vigil_rules::load_rules(&[scratch.path().to_path_buf()]) {
            Err(errors) => errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
            Ok(pack) => match rt.block_on(vigil_rules::RuleEngine::new(&pack, 1)) {
                Err(errors) => errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
                Ok(_) => panic!("{} was accepted", file.display()),
            },
        };
        let expected = expected.replace("FILE", &copy.display().to_string());
        assert!(message.contains(&expected), "{}: `{message}` should contain `{expected}`", file.display());
    }
}

#[test]
fn every_rule_we_ship_reads_attrs_through_attribute_columns() {
    // A call left per row parses every event's attrs again: the pack's cost would grow with it (issue 7).
    let mut dirs = vec![repo().join("benches/rules")];
    dirs.extend(
        std::fs::read_dir(repo().join("pipelines/rules")).expect("pipelines/rules").flatten().map(|e| e.path()),
    );
    dirs.retain(|d| d.is_dir());
    let pack = vigil_rules::load_rules(&dirs).expect("rules load");
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let engine = rt.block_on(vigil_rules::RuleEngine::new(&pack, 1)).expect("rules plan");
    assert_eq!(engine.rules_parsing_attrs_per_call(), Vec::<&str>::new());
}
