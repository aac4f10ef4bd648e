//! Attribute columns (`json_get_*(attrs, literal path)` planned as columns filled once per batch) give
//! exactly what the JSON functions give per row: the same engine with the rewrite off is the oracle, over
//! `attrs` texts chosen for the functions' corner cases.

use std::path::Path;

use arrow::array::RecordBatch;
use vigil_rules::rule::parse_rule;
use vigil_rules::{Alert, EngineOptions, RuleEngine, RulePack};
use vigil_schema::{EventBatchBuilder, EventRow, Provenance};

/// `attrs` texts: nesting, arrays (index, negative index, index spelled as text), repeated keys, escapes,
/// every JSON type where a string is expected, strings spelling booleans, `null`, missing members.
const ATTRS: [Option<&str>; 14] = [
    Some(r#"{"a":"x","o":{"k":"v","n":1},"arr":["p","q","r"],"b":true,"bs":"false","n":null}"#),
    Some(r#"{"a":"esc\"aped\n\u00e9","o":{"k":{"deep":[1,2]}},"arr":[],"b":"yes","bs":"true","n":3.5}"#),
    Some(r#"{"dup":"first","dup":"second","a":1,"o":[{"k":"in array"}],"arr":[{"k":1},"s"]}"#),
    Some(r#"{"a":null,"o":{},"arr":"not an array","b":false,"n":[1,{"z":null}]}"#),
    Some(r#"{}"#),
    Some(r#"[]"#),
    Some(r#""a string""#),
    None,
    Some(r#"{"o":{"k":"v2","k":"v3"},"a":"last member"}"#),
    Some(r#"{"arr":["only"],"n":"text","bs":"TRUE","a":""}"#),
    Some(r#"{"a":"x","o":{"k":"v"}"#),
    Some(r#"{"a":"x" "o":1}"#),
    Some(r#"{"o":{"k":"v"},"a":"y","tail":[1,2,"#),
    Some(r#"{"a":"🙂","o":{"k":"ünï"},"arr":["α","β"],"n":-0}"#),
];

const RULES: [(&str, &str); 4] = [
    (
        "every_getter.sql",
        "-- id: every_getter\n-- title: G\n-- severity: low\n-- criteria: CC7.2\n\
         SELECT time, event_id, json_get_str(attrs, 'a') AS s1, json_get_str(attrs, 'o', 'k') AS s2, \
         json_get_json(attrs, 'o') AS j1, json_get_json(attrs, 'arr', 1) AS j2, json_get_str(attrs, 'arr', -1) AS s3, \
         json_get_str(attrs, 'arr', '0') AS s4, json_as_text(attrs, 'n') AS t1, attrs->>'o' AS t2, \
         json_get_bool(attrs, 'b') AS b1, json_get_bool(attrs, 'bs') AS b2, json_get_str(attrs, 'dup') AS d, \
         json_get_str(attrs, 'o', 0, 'k') AS s5, json_get_json(attrs, 'o', 'k', 'deep', -1) AS j3 FROM events",
    ),
    (
        "aliased_filter.sql",
        "-- id: aliased_filter\n-- title: A\n-- severity: low\n-- criteria: CC7.2\n\
         SELECT e.time, e.event_id FROM events e WHERE json_get_str(e.attrs, 'a') = 'x' OR json_get_bool(e.attrs, 'b')",
    ),
    (
        "grouped.sql",
        "-- id: grouped\n-- title: Gr\n-- severity: low\n-- criteria: CC7.2\n\
         SELECT max(time) AS time, array_agg(event_id ORDER BY event_id) AS event_ids, json_get_str(attrs, 'o', 'k') AS k \
         FROM events GROUP BY json_get_str(attrs, 'o', 'k')",
    ),
    (
        "derived.sql",
        "-- id: derived\n-- title: D\n-- severity: low\n-- criteria: CC7.2\n\
         WITH x AS (SELECT * FROM events) SELECT time, event_id, json_get_str(attrs, 'a') AS a FROM x",
    ),
];

fn batch(first: usize, attrs: &[Option<&str>]) -> RecordBatch {
    let mut b = EventBatchBuilder::with_capacity(attrs.len());
    for (i, a) in attrs.iter().enumerate() {
        let offset = (first + i) as i64;
        let row = EventRow {
            time_us: 1_722_588_804_000_000 + offset,
            attrs: a.map(Into::into),
            ..EventRow::new("aws.cloudtrail")
        };
        let prov = Provenance { ingest_source: "t", partition: 0, offset, ingest_time_us: 0 };
        b.append(&row, format!("row {offset}").as_bytes(), &prov);
    }
    b.finish()
}

fn alerts(options: EngineOptions) -> (Vec<String>, Vec<String>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("test setup");
    rt.block_on(async {
        let rules = RULES.iter().map(|(name, text)| parse_rule(Path::new(name), text).expect("test setup")).collect();
        let pack = RulePack::new(rules).expect("test setup");
        let mut engine = RuleEngine::with_options(&pack, 2, options).await.expect("rules plan");
        let per_call = engine.rules_parsing_attrs_per_call().into_iter().map(str::to_string).collect();
        // Two partitions, as the pipeline makes them.
        let parts = [batch(0, &ATTRS[..7]), batch(7, &ATTRS[7..])];
        let mut state = engine.new_state();
        let mut alerts: Vec<Alert> = engine.evaluate(&mut state, &parts).await.expect("rules run");
        alerts.sort_by(|a, b| (&a.rule_id, &a.alert_id).cmp(&(&b.rule_id, &b.alert_id)));
        (alerts.iter().map(|a| serde_json::to_string(a).expect("test setup")).collect(), per_call)
    })
}

#[test]
fn attribute_columns_give_what_the_json_functions_give() {
    let (reference, all_per_call) = alerts(EngineOptions { attr_columns: false, ..EngineOptions::default() });
    assert_eq!(all_per_call, ["every_getter", "aliased_filter", "grouped", "derived"]);
    let (columns, per_call) = alerts(EngineOptions::default());
    // The derived table does not carry the columns: that rule keeps the function, with the same answer.
    assert_eq!(per_call, ["derived"]);
    assert_eq!(reference.len(), columns.len());
    for (want, got) in reference.iter().zip(&columns) {
        assert_eq!(want, got);
    }
    // The corner cases are exercised: values of every kind came back, not only nulls.
    let every: Vec<&String> = columns.iter().filter(|a| a.contains("every_getter")).collect();
    assert_eq!(every.len(), ATTRS.len());
    for needle in [
        r#""s2":"v""#,
        r#""s3":"r""#,
        r#""s4":"p""#,
        r#""d":"first""#,
        r#""b2":false"#,
        r#""s5":"in array""#,
        r#""j3":"2""#,
    ] {
        assert!(every.iter().any(|a| a.contains(needle)), "no alert has {needle}");
    }
}

/// Issue 22: on a stream of one source, the rules for other sources cost nothing: every rule of the shipped
/// SOC 2 pack names its source in a way the engine reads (`source = '...'`), except those meant for every
/// source.
#[test]
fn the_soc2_pack_names_its_sources() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("test setup");
    rt.block_on(async {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/rules/soc2");
        let pack = vigil_rules::load_rules(&[dir]).expect("the SOC 2 pack loads");
        let engine = RuleEngine::new(&pack, 2).await.expect("rules plan");
        assert_eq!(engine.rules_for_any_source(), ["attack_tool_user_agent", "source_silence"]);
    });
}
