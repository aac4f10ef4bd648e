use super::*;

const GOOD: &str = "-- id: r1\n-- title: T\n-- severity: high\n-- criteria: CC6.1, A1.2\n-- tags: a, b\n-- description: one\n-- description: two\n-- Note: free comment\n\nSELECT time, event_id FROM events\n";

#[test]
fn header_parses() {
    let rule = parse_rule(Path::new("r1.sql"), GOOD).unwrap();
    assert_eq!(rule.id, "r1");
    assert_eq!(rule.severity, Severity::High);
    assert_eq!(rule.criteria, vec!["CC6.1", "A1.2"]);
    assert_eq!(rule.description, "one two");
    assert_eq!(rule.query_line, 10);
    assert_eq!(rule.hash.len(), 64);
}

#[test]
fn header_errors_name_the_line() {
    let cases = [
        (GOOD.replace("-- severity: high", "-- severity: urgent"), "3: severity `urgent`"),
        (GOOD.replace("CC6.1, A1.2", "CC6.1, SOX404"), "4: `SOX404`"),
        (GOOD.replace("-- tags: a, b", "-- tag: a"), "5: unknown header key `tag`"),
        (GOOD.replace("-- id: r1\n", ""), "1: header has no `-- id"),
        (GOOD.replace("-- id: r1", "-- id: R 1"), "1: id `R 1`"),
    ];
    for (text, expected) in cases {
        let err = parse_rule(Path::new("x.sql"), &text).unwrap_err().to_string();
        assert!(err.contains(expected), "{err} should contain {expected}");
    }
}

#[test]
fn stateful_headers_parse_and_errors_name_the_line() {
    let base = "-- id: r\n-- title: T\n-- severity: high\n-- criteria: CC6.1\n";
    let rule = parse_rule(
        Path::new("t.sql"),
        &format!("{base}-- kind: threshold\n-- key: src_ip\n-- window: 10m\n-- threshold: 5\n-- distinct: actor_user\nSELECT 1"),
    )
    .unwrap();
    let spec = rule.stateful.unwrap();
    assert_eq!(
        (rule.kind, spec.key, spec.window_us, spec.threshold),
        (RuleKind::Threshold, vec!["src_ip".to_string()], 600_000_000, 5)
    );
    assert_eq!((spec.distinct.as_deref(), spec.lateness_us), (Some("actor_user"), DEFAULT_LATENESS_US));
    let cases = [
        ("-- kind: threshold\n-- key: a\n-- window: 10m\n", "needs `-- threshold"),
        ("-- kind: threshold\n-- key: a\n-- window: ten\n-- threshold: 3\n", "7: window `ten` is not a duration"),
        ("-- kind: sequence\n-- key: a\n-- window: 1h\n-- steps: one\n", "8: a sequence needs at least two steps"),
        ("-- kind: first_seen\n-- key: a\n-- window: 1h\n", "7: `window` does not apply to kind first_seen"),
        ("-- window: 1h\n", "5: `window` does not apply to kind stateless"),
        ("-- kind: sliding\n", "5: kind `sliding`"),
        ("-- kind: silence\n-- window: 1h\n", "needs `-- key"),
    ];
    for (header, expected) in cases {
        let err = parse_rule(Path::new("x.sql"), &format!("{base}{header}SELECT 1")).unwrap_err().to_string();
        assert!(err.contains(expected), "{err} should contain {expected}");
    }
    assert_eq!(parse_duration("90s"), Some(90_000_000));
    assert_eq!(parse_duration("7d"), Some(7 * 86_400_000_000));
    assert_eq!(parse_duration("1 h"), Some(3_600_000_000));
    assert_eq!(parse_duration("h"), None);
}

#[test]
fn criteria_forms() {
    for ok in ["CC6.1", "CC7", "A1.2", "C1.1", "PI1.3", "P4.2"] {
        assert!(is_criterion(ok), "{ok}");
    }
    for bad in ["cc6.1", "CC", "CC6.", "X1.1", "CC6.1.2.3", ""] {
        assert!(!is_criterion(bad), "{bad}");
    }
}
