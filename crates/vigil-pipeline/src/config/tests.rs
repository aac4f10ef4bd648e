//! Tests of pipeline configs: files, flags, environment, interpolation and the problems found.

use super::*;

#[test]
fn paths_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "[[inputs]]\nformat = \"cloudtrail\"\npath = \"logs\"\n[rules]\ndirs = [\"rules\"]\n[evidence]\nurl = \"ev\"\n[alerts]\npath = \"-\"\n").unwrap();
    let config = PipelineConfig::load(&path).unwrap();
    assert_eq!(config.inputs[0].path, dir.path().join("logs").to_string_lossy());
    assert_eq!(config.alerts.path.as_deref(), Some("-"));
    assert_eq!(config.pipeline, Settings::default());
    let problems: Vec<String> = config.problems("p.toml").iter().map(ToString::to_string).collect();
    assert!(problems.iter().any(|p| p.contains("p.toml:3: input") && p.contains("does not exist")), "{problems:?}");
}

#[test]
fn errors_name_the_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "[pipeline]\nbatch_rowz = 5\n[evidence]\nurl = \"e\"\n").unwrap();
    let err = PipelineConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("batch_rowz"), "{err}");
    let flag = InputConfig::from_flag("cloudtrail").unwrap_err().to_string();
    assert!(flag.contains("FORMAT:PATH"));
}

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
    move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| std::ffi::OsString::from(*v))
}

#[test]
fn variables_and_defaults_are_replaced_before_parsing() {
    let text = "# ${NOT_SET} in a comment stays\n\
                a = \"${HOST}:${PORT:-9092}\"\n\
                b = ${N}\n\
                c = \"${EMPTY:-fallback} ${EMPTY}|\"\n\
                d = \"$${HOST} stays\"\n\
                e = '${HOST}'\n\
                f = \"${QUOTED}\"\n\
                g = \"\"\"\n${QUOTED}\"\"\"\n\
                h = \"a\\\"${QUOTED}\" # ${NOT_SET}\n";
    let vars = [("HOST", "kafka-1"), ("N", "42"), ("EMPTY", ""), ("QUOTED", "say \"hi\"\\\n")];
    let out = interpolate(text, "p.toml", env(&vars)).unwrap();
    let value: toml::Table = toml::from_str(&out.text).unwrap();
    assert_eq!(value["a"].as_str(), Some("kafka-1:9092"));
    assert_eq!(value["b"].as_integer(), Some(42));
    assert_eq!(value["c"].as_str(), Some("fallback |"));
    assert_eq!(value["d"].as_str(), Some("${HOST} stays"));
    assert_eq!(value["e"].as_str(), Some("kafka-1"));
    assert_eq!(value["f"].as_str(), Some("say \"hi\"\\\n"), "{}", out.text);
    assert_eq!(value["g"].as_str(), Some("say \"hi\"\\\n"));
    assert_eq!(value["h"].as_str(), Some("a\"say \"hi\"\\\n"));
    assert!(out.text.starts_with("# ${NOT_SET} in a comment stays\n"));
    assert!(out.text.ends_with("# ${NOT_SET}\n"));
}

#[test]
fn an_unset_variable_is_an_error_naming_it_the_file_and_the_line() {
    let text = "a = 1\nb = \"${SET}\"\nc = \"${MISSING}\"\n";
    let err = interpolate(text, "p.toml", env(&[("SET", "s3cr3t-value")])).err().unwrap().to_string();
    assert!(err.starts_with("p.toml:3: ") && err.contains("`MISSING` is not set"), "{err}");
    assert!(!err.contains("s3cr3t-value"), "{err}");
    let err = interpolate("a = \"${A}\"\n\n b = \"${B}\"", "p.toml", env(&[])).err().unwrap().to_string();
    assert!(err.contains("`A` (line 1), `B` (line 3)"), "{err}");
    // A variable set to nothing is set.
    let out = interpolate("a = \"${A}\"", "p.toml", env(&[("A", "")])).unwrap();
    assert_eq!(out.text, "a = \"\"");
}

#[test]
fn malformed_references_are_errors_with_the_line() {
    for (text, expect) in [
        ("a = 1\nb = \"${}\"", "p.toml:2: `${}` is not a variable reference"),
        ("b = \"${A-b}\"", "p.toml:1: `${A-b}` is not a variable reference"),
        ("b = \"${1A}\"", "p.toml:1: `${1A}` is not a variable reference"),
        ("b = \"${A\"\nc = 1}", "p.toml:1: `${` without its closing `}`"),
    ] {
        let err = interpolate(text, "p.toml", env(&[("A", "x")])).err().unwrap().to_string();
        assert!(err.starts_with(expect), "{text}: {err}");
    }
    let err = interpolate("a = '${Q}'", "p.toml", env(&[("Q", "it's-secret")])).err().unwrap().to_string();
    assert!(err.starts_with("p.toml:1: the value of `Q` holds a '") && !err.contains("secret"), "{err}");
}

#[test]
fn a_toml_error_on_a_line_with_a_value_does_not_show_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "[pipeline]\nthreads = \"${THREADS}\"\n[evidence]\nurl = \"e\"\n").unwrap();
    let err = PipelineConfig::load_with(&path, env(&[("THREADS", "hunter2")])).unwrap_err().to_string();
    assert!(err.contains("p.toml:2: ") && err.contains("${THREADS}") && !err.contains("hunter2"), "{err}");
    // Other lines keep TOML's own message, which quotes the line.
    std::fs::write(&path, "[pipeline]\nthreads = ${THREADS}\nbatch_rowz = 1\n[evidence]\nurl = \"e\"\n").unwrap();
    let err = PipelineConfig::load_with(&path, env(&[("THREADS", "2")])).unwrap_err().to_string();
    assert!(err.contains("line 3") && err.contains("batch_rowz"), "{err}");
}

#[test]
fn a_config_file_takes_brokers_and_bucket_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[pipeline]\nthreads = ${THREADS:-3}\n[[inputs]]\nformat = \"cloudtrail\"\n[inputs.kafka]\n\
         brokers = \"${BROKERS}\"\ntopics = [\"${TOPIC:-cloudtrail}\"]\ngroup = \"vigil\"\n\
         [evidence]\nurl = \"s3://${BUCKET}/vigil?region=${REGION:-us-east-1}\"\n",
    )
    .unwrap();
    let vars = [("BROKERS", "b-1:9096, b-2:9096"), ("BUCKET", "evidence-bucket")];
    let config = PipelineConfig::load_with(&path, env(&vars)).unwrap();
    assert_eq!(config.pipeline.threads, 3);
    let kafka = config.inputs[0].kafka.as_ref().unwrap();
    assert_eq!(kafka.brokers, ["b-1:9096", "b-2:9096"]);
    assert_eq!(kafka.topics, ["cloudtrail"]);
    assert_eq!(config.evidence.url, "s3://evidence-bucket/vigil?region=us-east-1");
    assert_eq!(config.inputs[0].line, 5);
    let err = PipelineConfig::load_with(&path, env(&vars[..1])).unwrap_err().to_string();
    assert!(err.contains("p.toml:10: ") && err.contains("`BUCKET` is not set"), "{err}");
}

#[test]
fn alert_destinations_come_from_flags_and_tables_and_need_a_local_spool() {
    let mut alerts = OutputConfig::default();
    alerts.set_from_flag("https://siem.example.com/in/t0ken", "alerts").unwrap();
    alerts.set_from_flag("pagerduty://", "alerts").unwrap();
    alerts.set_from_flag("out.ndjson", "alerts").unwrap();
    assert_eq!(alerts.destinations.len(), 2);
    assert_eq!(alerts.path.as_deref(), Some("out.ndjson"));
    let err = OutputConfig::default().set_from_flag("slack://", "dlq").unwrap_err().to_string();
    assert!(err.contains("take alerts only"), "{err}");
    assert_eq!(alerts.spool_root("ev"), Some(PathBuf::from("ev/state/alert-spool")));
    assert_eq!(alerts.spool_root("file:///srv/ev"), Some(PathBuf::from("/srv/ev/state/alert-spool")));
    assert_eq!(alerts.spool_root("s3://bucket/prefix"), None);
    assert_eq!("ocsf".parse::<AlertFormat>().unwrap(), AlertFormat::Ocsf);
    assert!("xml".parse::<AlertFormat>().is_err());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[[inputs]]\nformat = \"cloudtrail\"\npath = \"-\"\n[rules]\ndirs = [\"r\"]\n[evidence]\nurl = \"s3://b/p\"\n\
         [alerts]\nformat = \"ocsf\"\n[[alerts.destinations]]\nurl = \"https://siem.example.com/in/t0ken\"\n\
         secret_env = \"VIGIL_TEST_UNSET_SECRET_4F1C\"\n",
    )
    .unwrap();
    let config = PipelineConfig::load(&path).unwrap();
    assert_eq!(config.alerts.format, AlertFormat::Ocsf);
    let problems: Vec<String> = config.problems("p.toml").iter().map(ToString::to_string).collect();
    assert!(problems.iter().any(|p| p.contains("set [alerts] spool_dir")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("VIGIL_TEST_UNSET_SECRET_4F1C")), "{problems:?}");
    assert!(problems.iter().all(|p| !p.contains("t0ken")), "a URL path is never shown: {problems:?}");
}
