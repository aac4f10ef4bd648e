mod conversion {
    use crate::*;

    fn rule(detection: &str) -> String {
        format!(
            "title: T\nid: 0a51\nauthor: me\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n{detection}\nlevel: medium\ntags:\n  - attack.persistence\n"
        )
    }

    #[test]
    fn converts_with_header_and_metadata() {
        let c = convert(Path::new("dir/AWS Backdoor.yml"), &rule("  sel:\n    eventName: CreateAccessKey\n  filter:\n    userIdentity.arn|contains: x\n  condition: sel and not filter")).unwrap();
        assert!(c.sql.starts_with("-- id: aws_backdoor\n-- title: T\n-- severity: medium\n-- criteria: CC7.2, CC6.3\n-- tags: sigma, attack.persistence\n"), "{}", c.sql);
        assert!(c.sql.contains("WHERE source = 'aws.cloudtrail'\n  AND ("), "{}", c.sql);
        assert!(c.sql.contains("(NOT coalesce(regexp_like("), "{}", c.sql);
        assert_eq!((c.meta.id.as_str(), c.meta.author.as_str()), ("0a51", "me"));
    }

    #[test]
    fn refusals_name_the_line() {
        let cases = [
            ("  sel:\n    eventName|expand: '%x%'\n  condition: sel", 9, Refusal::Modifier),
            ("  sel:\n    eventName: NO\n  condition: sel", 9, Refusal::Value),
            ("  sel:\n    eventName: x\n  condition: sel | count() > 5", 10, Refusal::Condition),
            ("  sel:\n    eventName: x\n  condition: other", 10, Refusal::Condition),
            ("  sel:\n    eventName: x\n  condition:\n    - sel\n    - sel", 11, Refusal::Condition),
        ];
        for (detection, line, kind) in cases {
            let err = convert(Path::new("r.yml"), &rule(detection)).unwrap_err();
            let Error::Refused { line: l, kind: k, .. } = &err;
            assert_eq!((*l, *k), (line, kind), "{err}");
            assert!(err.to_string().starts_with(&format!("r.yml:{line}: ")), "{err}");
        }
        let corr = "title: C\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n  condition: {gte: 2}\n";
        let err = convert(Path::new("c.yml"), corr).unwrap_err();
        assert_eq!((err.kind(), err.to_string().starts_with("c.yml:4: ")), (Refusal::Correlation, true), "{err}");
    }

    #[test]
    fn vigil_grouping_keys_pass_through() {
        let text = rule("  sel:\n    eventName: x\n  condition: sel") + "group_by: [userAgent, src_ip]\nsuppress: 1h\n";
        let c = convert(Path::new("r.yml"), &text).unwrap();
        assert!(c.sql.contains("-- suppress: 1h\n-- group_by: userAgent, src_ip\n"), "{}", c.sql);
        assert!(c.sql.contains(", json_as_text(TRY_CAST(raw AS VARCHAR), 'userAgent') AS \"userAgent\" FROM events"));
        let bad = rule("  sel:\n    eventName: x\n  condition: sel") + "group_by: [a.0.b]\nsuppress: 1h\n";
        assert_eq!(convert(Path::new("r.yml"), &bad).unwrap_err().kind(), Refusal::Field);
    }

    #[test]
    fn criteria_override() {
        let text = rule("  sel:\n    eventName: x\n  condition: sel") + "criteria: [CC6.1, A1.2]\n";
        assert!(convert(Path::new("r.yml"), &text).unwrap().sql.contains("-- criteria: CC6.1, A1.2\n"));
        let text = rule("  sel:\n    eventName: x\n  condition: sel") + "criteria: CC8.1\n";
        assert!(convert(Path::new("r.yml"), &text).unwrap().sql.contains("-- criteria: CC8.1\n"));
    }
}

mod web_tests {
    use crate::*;

    fn web(item: &str) -> Result<Converted> {
        convert(
            Path::new("w.yml"),
            &format!("title: W\nlogsource:\n  category: proxy\ndetection:\n  sel:\n    {item}\n  condition: sel\n"),
        )
    }

    #[test]
    fn values_the_access_log_columns_cannot_tell_from_missing_are_refused() {
        for item in [
            "c-useragent: ''",
            "c-useragent|contains: '-'",
            "cs-method: null",
            "c-uri|exists: true",
            "c-useragent|re: '^$'",
        ] {
            let err = web(item).unwrap_err();
            assert_eq!(
                (err.kind(), err.to_string().starts_with("w.yml:6: field")),
                (Refusal::Field, true),
                "{item}: {err}"
            );
        }
        for item in ["c-useragent: 'curl/*'", "cs-method: GET", "c-useragent|endswith: '='", "sc-status: 404"] {
            assert!(web(item).is_ok(), "{item}");
        }
    }
}
