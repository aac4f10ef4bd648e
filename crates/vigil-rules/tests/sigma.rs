//! Sigma rules in the engine: converted rules plan, read the record's own fields from `raw` through the
//! attribute walk exactly as the JSON functions do per row (the engine with the walk off is the reference),
//! and match what Sigma's semantics say for hand-picked records (expected sets written from the Sigma
//! specification, not from vigil's output).

use std::path::Path;

use arrow::array::{Array, RecordBatch};
use vigil_rules::sigma::parse_rule_file;
use vigil_rules::{EngineOptions, RuleEngine, RulePack};
use vigil_schema::{EventBatchBuilder, EventRow, Provenance};

/// Records (the `raw` bytes of CloudTrail events): case variants, wildcards, escapes, arrays, nulls,
/// numbers, booleans, repeated keys, a record that is not UTF-8, one that is not JSON.
const RAW: [&[u8]; 12] = [
    br#"{"eventName":"CreateAccessKey","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob"},"responseElements":{"accessKey":{"userName":"alice"}}}"#,
    br#"{"eventName":"createaccesskey","userIdentity":{"type":"Root"},"additionalEventData":{"MFAUsed":"No"}}"#,
    br#"{"eventName":"CREATEACCESSKEY","userIdentity":{"type":"iamuser","arn":"arn:aws:iam::1:user/alice"},"responseElements":{"accessKey":{"userName":"ALICE"}}}"#,
    br#"{"eventName":"ConsoleLogin","additionalEventData":{"MFAUsed":"NO"},"responseElements":{"ConsoleLogin":"Success"},"errorCode":null}"#,
    br#"{"eventName":"PutBucketVersioning","requestParameters":{"VersioningConfiguration":{"Status":"Suspended"}},"code":403}"#,
    br#"{"eventName":"Put*Star","userAgent":"a?b","requestParameters":[{"x":"Suspended"}],"code":"403"}"#,
    br#"{"eventName":"DeleteTrail","eventName":"StopLogging","userIdentity":"not an object","enabled":true}"#,
    br#"{"eventName":"St\u00f6pLogging","userAgent":"Kelvin \u212a sign","enabled":"TRUE","code":403.0}"#,
    b"{\"eventName\":\"DeleteTrail\",\"userAgent\":\"bad \xff byte\"}",
    br#"not json at all: DeleteTrail"#,
    br#"{"eventName":"GetObject","userAgent":"aws-cli/2 prefix\nsecond line ends k","enabled":1}"#,
    br#"{}"#,
];

const RULES: [(&str, &str); 6] = [
    (
        "backdoor_keys.yml",
        "title: Keys for another user\nid: 0a5177f4\nauthor: faloker\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    eventName: CreateAccessKey\n  filter:\n    userIdentity.arn|fieldref|endswith: responseElements.accessKey.userName\n  condition: sel and not filter\nlevel: medium\n",
    ),
    (
        "no_mfa.yml",
        "title: No MFA\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    additionalEventData.MFAUsed: 'NO'\n  nulls:\n    errorCode: null\n  condition: sel and nulls\n",
    ),
    (
        "wildcards.yml",
        "title: W\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  literal:\n    eventName: 'Put\\*Star'\n  one:\n    userAgent: 'A?B'\n  contains:\n    requestParameters|contains: suspended\n  condition: 1 of them\n",
    ),
    (
        "numbers_bools.yml",
        "title: N\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  num:\n    code: 403\n  flag:\n    enabled: true\n  condition: num or flag\n",
    ),
    (
        "keywords_regex.yml",
        "title: K\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  keywords:\n    - 'deletetrail'\n  re:\n    userAgent|re: '^aws-cli/\\d'\n  kelvin:\n    userAgent|contains: 'kelvin k'\n  condition: keywords or re or kelvin\n",
    ),
    (
        "exists.yml",
        "title: E\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    userIdentity.type|exists: true\n  other:\n    userAgent|startswith|cased: 'aws-cli/'\n  condition: sel or other\n",
    ),
];

fn batch(raws: &[&[u8]]) -> RecordBatch {
    let mut b = EventBatchBuilder::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let row = EventRow { time_us: 1_722_588_804_000_000 + i as i64, ..EventRow::new("aws.cloudtrail") };
        let prov = Provenance { ingest_source: "t", partition: 0, offset: i as i64, ingest_time_us: 0 };
        b.append(&row, raw, &prov);
    }
    b.finish()
}

/// Per rule id, the record numbers (index in RAW) it matched.
fn matches(options: EngineOptions) -> (Vec<(String, Vec<usize>)>, Vec<String>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("test setup");
    rt.block_on(async {
        let rules =
            RULES.iter().map(|(name, text)| parse_rule_file(Path::new(name), text).expect("converts")).collect();
        let pack = RulePack::new(rules).expect("pack");
        let mut engine = RuleEngine::with_options(&pack, 2, options).await.expect("plans");
        let per_call = engine.rules_parsing_attrs_per_call().into_iter().map(str::to_string).collect();
        let data = batch(&RAW);
        let ids: Vec<String> = {
            let col = data.column_by_name("event_id").expect("event_id");
            let col = col.as_any().downcast_ref::<arrow::array::StringArray>().expect("utf8");
            (0..col.len()).map(|i| col.value(i).to_string()).collect()
        };
        let mut state = engine.new_state();
        let alerts = engine.evaluate(&mut state, &[data]).await.expect("rules run");
        let mut out: Vec<(String, Vec<usize>)> = Vec::new();
        for (name, _) in RULES {
            let id = name.trim_end_matches(".yml");
            let mut rows: Vec<usize> = alerts
                .iter()
                .filter(|a| a.rule_id == id)
                .flat_map(|a| a.event_ids.iter().map(|e| ids.iter().position(|x| x == e).expect("known id")))
                .collect();
            rows.sort();
            out.push((id.to_string(), rows));
        }
        (out, per_call)
    })
}

#[test]
fn sigma_rules_match_as_sigma_says_with_and_without_the_attribute_walk() {
    let (walked, per_call) = matches(EngineOptions::default());
    assert!(per_call.is_empty(), "every raw field read is a walked column: {per_call:?}");
    let (per_row, _) = matches(EngineOptions { attr_columns: false, ..EngineOptions::default() });
    assert_eq!(walked, per_row);
    let expect = |id: &str| walked.iter().find(|(r, _)| r == id).map(|(_, v)| v.clone()).expect("rule");
    // eventName matches in any ASCII case; record 0's arn ends with "alice"? no ("bob"): alert;
    // record 2's arn ends with "alice" and the field it refers to is "ALICE": same ignoring case, filtered.
    // Record 1 has no responseElements: the filter is false, so it alerts.
    assert_eq!(expect("backdoor_keys"), vec![0, 1]);
    // 'NO' matches "No" and "NO"; errorCode null (3) and missing (1) both read null.
    assert_eq!(expect("no_mfa"), vec![1, 3]);
    // `\*` is a literal star (5), `?` one character (5: "a?b"), contains over an object's JSON text (4);
    // an array member's `x` is not a path (5 matches anyway through the other detections).
    assert_eq!(expect("wildcards"), vec![4, 5]);
    // 403 matches the number 403 and the string "403", not 403.0; true matches true, "TRUE" and 1.
    assert_eq!(expect("numbers_bools"), vec![4, 5, 6, 7, 10]);
    // keywords search the record as text in any ASCII case (6, 8 is not UTF-8, 9 is not JSON but text);
    // `\d` is ASCII; U+212A KELVIN SIGN is not an ASCII `k`; `^` anchors the start of the text only.
    assert_eq!(expect("keywords_regex"), vec![6, 9, 10]);
    // exists: a member that is a string counts, a missing one does not; `cased` keeps case.
    assert_eq!(expect("exists"), vec![0, 1, 2, 10]);
}
