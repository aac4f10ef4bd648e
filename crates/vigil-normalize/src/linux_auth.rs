//! Linux authentication logs as syslog text lines (`/var/log/auth.log`, `/var/log/secure`,
//! `/var/log/messages`): sshd, sudo, su and PAM; `source = linux.auth`.
//!
//! `Mmm dd HH:MM:SS host program[pid]: message` (BSD syslog; also `program(pam_unix)[pid]:` and no pid),
//! or the same with an RFC 3339 time (`2024-08-02T08:53:24.123456+00:00`, rsyslog's high-precision form).
//! BSD syslog has no year: it comes from the input's `year` option, else from the file's modification
//! date (the pipeline sets it per file), else the current year; a month more than one ahead of that
//! date's month is taken as the year before (a December line in a file written in January).
//!
//! | column | filled from |
//! | --- | --- |
//! | `time` | the syslog time (UTC) |
//! | `class` | `authentication` (sshd logins, PAM), `account_change` (sudo, su), `system_activity` (others) |
//! | `activity` | `ssh_login` (Accepted / Failed ... for), `ssh_invalid_user`, `ssh_disconnect`, `pam_auth_failure`, `sudo`, `su`, else the program name |
//! | `outcome` | `success` (Accepted, sudo COMMAND, su session opened / Successful su), `failure` (Failed, Invalid user, authentication failure, incorrect password, FAILED su), else `unknown` |
//! | `actor_user` | the user logging in (`for X`, `user=X`, `Invalid user X`); sudo: the user before ` : `; su: `by X` |
//! | `target_user` | sudo `USER=`, su `for user X` / `su for X` |
//! | `privilege` | sudo and su: the target user (`root`) |
//! | `src_ip` | `from ADDR`, `rhost=ADDR`, `[ADDR]` when it is an address |
//! | `target_resource` | sudo `COMMAND=` |
//! | `attrs` | `host`, `program`, `pid`, `message`, `method` (password, publickey, ...), `port`, `invalid_user`, `rhost` when it is a name |
//!
//! A line without the syslog header shape is dead-lettered `unrecognized_line`, one with an impossible
//! date `invalid_time`.

use std::borrow::Cow;

use vigil_schema::{EventBatchBuilder, EventRow, Provenance, class, outcome};

use crate::fields::{ObjectText, canonical_ip};
use crate::time::{month_number, parse_rfc3339_us};
use crate::{Framing, Normalizer, ReasonCode, Rejection, Scratch};

/// The canonical `source` of Linux authentication logs.
pub const SOURCE: &str = "linux.auth";

/// The syslog authentication-line normalizer.
#[derive(Debug, Clone, Copy)]
pub struct LinuxAuth {
    /// Year of BSD syslog times.
    pub year: i32,
    /// Month (1-12) of the reference date: a later month than this plus one is the year before.
    pub month: u32,
    /// Day of the reference date, when it is a file's modification date: a time after that day (plus one,
    /// for clocks and time zones) is the year before, since a log line is never written after its file.
    pub day: Option<u32>,
}

impl LinuxAuth {
    /// A normalizer whose BSD syslog times fall in the year before (and up to one month after) the
    /// reference `year`-`month`.
    pub fn new(year: i32, month: u32) -> Self {
        LinuxAuth { year, month: month.clamp(1, 12), day: None }
    }

    /// A normalizer for a file last modified on `year`-`month`-`day`: its lines are dated on or before
    /// that day (a day later at most), so a later month and day is the year before.
    pub fn for_file_dated(year: i32, month: u32, day: u32) -> Self {
        LinuxAuth { year, month: month.clamp(1, 12), day: Some(day.clamp(1, 31)) }
    }

    fn bsd_time_us(&self, text: &str) -> Option<i64> {
        // "Dec 10 06:55:46" or "Jan  1 00:00:00"
        let b = text.as_bytes();
        if b.len() != 15 || !b.is_ascii() || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
            return None;
        }
        let month = month_number(b.get(..3)?)?;
        let day: u32 = text.get(4..6)?.trim().parse().ok()?;
        let later = match self.day {
            Some(ref_day) => (month, day) > (i64::from(self.month), ref_day + 1),
            None => month > i64::from(self.month) + 1,
        };
        let year = if later { self.year.checked_sub(1)? } else { self.year };
        // a year outside 0-9999 (from config) does not print as four digits and so does not parse
        let iso = format!("{year:04}-{month:02}-{day:02}T{}Z", text.get(7..15)?);
        parse_rfc3339_us(&iso)
    }
}

/// What a message says, for the canonical columns.
#[derive(Default)]
struct Parsed<'m> {
    class: Option<&'static str>,
    activity: Option<Cow<'m, str>>,
    outcome: &'static str,
    user: Option<&'m str>,
    target_user: Option<&'m str>,
    ip: Option<&'m str>,
    method: Option<&'m str>,
    port: Option<&'m str>,
    invalid_user: bool,
    command: Option<&'m str>,
}

/// The word after `marker` (up to a space or `;`).
fn word_after<'m>(message: &'m str, marker: &str) -> Option<&'m str> {
    let (_, rest) = message.split_once(marker)?;
    rest.split([' ', ';']).next().filter(|w| !w.is_empty())
}

/// `key=value` in a PAM or sudo message.
fn pam_value<'m>(message: &'m str, key: &str) -> Option<&'m str> {
    let (at, _) = message.match_indices(key).find(|&(at, _)| {
        let before = at.checked_sub(1).and_then(|i| message.as_bytes().get(i));
        before.is_none_or(|c| matches!(c, b' ' | b';'))
    })?;
    word_after(message.get(at..)?, key)
}

fn sshd(message: &str) -> Parsed<'_> {
    let mut p = Parsed { class: Some(class::AUTHENTICATION), outcome: outcome::UNKNOWN, ..Parsed::default() };
    let login = message
        .strip_prefix("Accepted ")
        .map(|r| (r, outcome::SUCCESS))
        .or_else(|| message.strip_prefix("Failed ").map(|r| (r, outcome::FAILURE)));
    if let Some((rest, result)) = login {
        // "<method> for [invalid user ]<user> from <ip> port <port> ssh2" (user may hold spaces)
        if let Some((method, rest)) = rest.split_once(" for ") {
            let (user_part, tail) = rest.rsplit_once(" from ").unwrap_or((rest, ""));
            let user = user_part.strip_prefix("invalid user ").inspect(|_| p.invalid_user = true).unwrap_or(user_part);
            p.activity = Some(Cow::Borrowed("ssh_login"));
            p.outcome = result;
            p.method = Some(method);
            p.user = Some(user);
            p.ip = tail.split(' ').next().filter(|s| !s.is_empty());
            p.port = word_after(tail, "port ");
            return p;
        }
    }
    if let Some(rest) = message.strip_prefix("Invalid user ") {
        let (user, tail) = rest.rsplit_once(" from ").unwrap_or((rest, ""));
        p.activity = Some(Cow::Borrowed("ssh_invalid_user"));
        p.outcome = outcome::FAILURE;
        p.user = Some(user);
        p.invalid_user = true;
        p.ip = tail.split(' ').next().filter(|s| !s.is_empty());
        p.port = word_after(tail, "port ");
        return p;
    }
    if message.contains("authentication failure") {
        return pam_failure(message);
    }
    for marker in ["Received disconnect from ", "Disconnected from ", "Connection closed by "] {
        if let Some((_, rest)) = message.split_once(marker) {
            let rest = rest
                .strip_prefix("authenticating user ")
                .or_else(|| rest.strip_prefix("invalid user "))
                .unwrap_or(rest);
            p.activity = Some(Cow::Borrowed("ssh_disconnect"));
            p.ip = rest.split([' ', ':']).find(|w| canonical_ip(w).is_some());
            return p;
        }
    }
    p.class = Some(class::AUTHENTICATION);
    p.activity = Some(Cow::Borrowed("sshd"));
    p.ip = word_after(message, "from ").or_else(|| {
        let (_, bracketed) = message.split_once('[')?;
        bracketed.split_once(']').map(|(inside, _)| inside)
    });
    p
}

fn pam_failure(message: &str) -> Parsed<'_> {
    Parsed {
        class: Some(class::AUTHENTICATION),
        activity: Some(Cow::Borrowed("pam_auth_failure")),
        outcome: outcome::FAILURE,
        user: pam_value(message, "user="),
        ip: pam_value(message, "rhost="),
        ..Parsed::default()
    }
}

fn sudo(message: &str) -> Parsed<'_> {
    let mut p =
        Parsed { class: Some(class::ACCOUNT_CHANGE), activity: Some(Cow::Borrowed("sudo")), ..Parsed::default() };
    if message.contains("authentication failure") {
        let mut f = pam_failure(message);
        f.activity = Some(Cow::Borrowed("sudo"));
        f.class = Some(class::ACCOUNT_CHANGE);
        return f;
    }
    // "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash"
    // "alice : 3 incorrect password attempts ; TTY=... ; USER=root ; COMMAND=..."
    let Some((user, rest)) = message.split_once(" : ") else {
        p.outcome = outcome::UNKNOWN;
        return p;
    };
    p.user = Some(user.trim());
    p.target_user = pam_value(rest, "USER=");
    p.command = rest.split_once("COMMAND=").map(|(_, command)| command.trim());
    p.outcome =
        if rest.contains("incorrect password") || rest.contains("NOT in sudoers") || rest.contains("not allowed") {
            outcome::FAILURE
        } else if p.command.is_some() {
            outcome::SUCCESS
        } else {
            outcome::UNKNOWN
        };
    p
}

fn su(message: &str) -> Parsed<'_> {
    let mut p = Parsed {
        class: Some(class::ACCOUNT_CHANGE),
        activity: Some(Cow::Borrowed("su")),
        outcome: outcome::UNKNOWN,
        ..Parsed::default()
    };
    if message.contains("authentication failure") {
        let mut f = pam_failure(message);
        f.activity = Some(Cow::Borrowed("su"));
        f.class = Some(class::ACCOUNT_CHANGE);
        return f;
    }
    // "session opened for user root by alice(uid=1000)", "Successful su for root by alice",
    // "FAILED su for root by alice", "(to root) alice on pts/0"
    if let Some(rest) = message.split("session opened for user ").nth(1) {
        p.outcome = outcome::SUCCESS;
        p.target_user = rest.split(' ').next();
        p.user = word_after(rest, "by ").map(|u| u.split('(').next().unwrap_or(u)).filter(|u| !u.is_empty());
    } else if let Some(rest) =
        message.strip_prefix("Successful su for ").or_else(|| message.strip_prefix("FAILED su for "))
    {
        p.outcome = if message.starts_with("FAILED") { outcome::FAILURE } else { outcome::SUCCESS };
        p.target_user = rest.split(' ').next();
        p.user = word_after(rest, "by ");
    } else if message.starts_with("session closed") {
        p.target_user = word_after(message, "for user ");
    }
    p
}

impl Normalizer for LinuxAuth {
    fn format(&self) -> &'static str {
        "linux_auth"
    }

    fn source(&self) -> &str {
        SOURCE
    }

    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn normalize(
        &self,
        raw: &[u8],
        provenance: &Provenance<'_>,
        scratch: &mut Scratch,
        out: &mut EventBatchBuilder,
    ) -> Result<(), Rejection> {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let unrecognized =
            |what: &str| Rejection::new(ReasonCode::UnrecognizedLine, format!("not a syslog line: {what}"));
        // Time: BSD (15 characters) or RFC 3339 up to the first space.
        let bsd = line.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
        let (time_us, rest) = if let (true, Some(head), Some(rest)) =
            (bsd, line.get(..15), line.get(15..).and_then(|r| r.strip_prefix(' ')))
        {
            let time = self.bsd_time_us(head).ok_or_else(|| {
                Rejection::new(ReasonCode::InvalidTime, format!("time `{head}` is not `Mmm dd HH:MM:SS`"))
            })?;
            (time, rest)
        } else if bsd {
            return Err(unrecognized("no `Mmm dd HH:MM:SS ` time at the start"));
        } else {
            let (text, rest) = line.split_once(' ').ok_or_else(|| unrecognized("no time"))?;
            let time = parse_rfc3339_us(text).ok_or_else(|| {
                Rejection::new(
                    ReasonCode::InvalidTime,
                    format!("time `{text}` is neither `Mmm dd HH:MM:SS` nor RFC 3339"),
                )
            })?;
            (time, rest)
        };
        let (host, rest) = rest.split_once(' ').ok_or_else(|| unrecognized("no host"))?;
        let (tag, message) = rest
            .split_once(": ")
            .or_else(|| rest.strip_suffix(':').map(|t| (t, "")))
            .ok_or_else(|| unrecognized("no `program[pid]: ` tag"))?;
        if tag.is_empty() || tag.contains(' ') && !tag.starts_with("sshd") {
            return Err(unrecognized("no `program[pid]: ` tag"));
        }
        let (name, pid) = match tag.split_once('[') {
            Some((name, pid)) => (name, pid.strip_suffix(']')),
            None => (tag, None),
        };
        // "sshd(pam_unix)" and "sshd" are one program.
        let program = name.split('(').next().unwrap_or(name);
        let message = message.trim_end();
        // "message repeated 3 times: [ Failed password for root from ... ]"
        let inner = message
            .strip_prefix("message repeated ")
            .and_then(|r| r.split_once(": [ "))
            .map_or(message, |(_, m)| m.trim_end_matches(" ]").trim_end_matches(']'));
        let parsed = match program {
            "sshd" => sshd(inner),
            "sudo" => sudo(inner),
            "su" => su(inner),
            _ if inner.contains("authentication failure") => pam_failure(inner),
            _ => Parsed {
                class: Some(class::SYSTEM_ACTIVITY),
                activity: Some(Cow::Borrowed(program)),
                outcome: outcome::UNKNOWN,
                ..Parsed::default()
            },
        };
        let ip = parsed.ip.and_then(canonical_ip);
        let rhost_name = parsed.ip.filter(|_| ip.is_none());
        let mut attrs = ObjectText::new(&mut scratch.attrs);
        attrs.member("host", Some(host));
        attrs.member("program", Some(program));
        attrs.member("pid", pid);
        attrs.member("message", Some(message));
        attrs.member("method", parsed.method);
        attrs.member("port", parsed.port);
        attrs.member("invalid_user", parsed.invalid_user.then_some("true"));
        attrs.member("rhost", rhost_name);
        attrs.finish();
        let attrs = &scratch.attrs;
        let privilege = match parsed.activity.as_deref() {
            Some("sudo" | "su") => parsed.target_user,
            _ => None,
        };
        let row = EventRow {
            time_us,
            source: Cow::Borrowed(SOURCE),
            class: parsed.class.map(Cow::Borrowed),
            activity: parsed.activity,
            outcome: Cow::Borrowed(parsed.outcome),
            actor_user: parsed.user.map(Cow::Borrowed),
            src_ip: ip,
            target_user: parsed.target_user.map(Cow::Borrowed),
            target_resource: parsed.command.map(Cow::Borrowed),
            privilege: privilege.map(Cow::Borrowed),
            attrs: Some(Cow::Borrowed(attrs.as_str())),
            ..EventRow::new(SOURCE)
        };
        out.append(&row, raw, provenance);
        Ok(())
    }
}

/// The `linux_auth` format's normalizer: syslog times carry no year, so it comes from `year`, else from
/// the file's modification date (`file_date`, set by the pipeline), else from today.
pub(crate) fn build(options: &crate::FormatOptions) -> crate::Result<std::sync::Arc<dyn crate::Normalizer>> {
    use chrono::Datelike;
    Ok(std::sync::Arc::new(match (options.year, options.file_date) {
        (Some(year), _) => LinuxAuth::new(year, 12), // the given year, no roll-back
        (None, Some((year, month, day))) => LinuxAuth::for_file_dated(year, month, day),
        (None, None) => {
            let now = chrono::Utc::now();
            LinuxAuth::for_file_dated(now.year(), now.month(), now.day())
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RawRecords, normalize_records};
    use arrow::array::{Array, AsArray};

    fn one(line: &str) -> arrow::array::RecordBatch {
        let mut records = RawRecords::default();
        records.push(1, line.as_bytes());
        let out = normalize_records(&LinuxAuth::new(2017, 1), records, "t", 0, 0, 16);
        assert!(out.dead_letters.is_empty(), "{line}: {:?}", out.dead_letters);
        arrow::compute::concat_batches(&out.batches[0].schema(), &out.batches).unwrap()
    }

    fn col(batch: &arrow::array::RecordBatch, name: &str) -> Option<String> {
        let c = batch.column_by_name(name).unwrap().as_string::<i32>();
        (!c.is_null(0)).then(|| c.value(0).to_string())
    }

    #[test]
    fn sshd_sudo_su_lines_fill_the_columns() {
        let cases: [(&str, [Option<&str>; 6]); 7] = [
            (
                "Dec 10 06:55:46 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
                [Some("ssh_login"), Some("failure"), Some("webmaster"), Some("173.234.31.186"), None, None],
            ),
            (
                "Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for fztu from 119.137.62.142 port 49116 ssh2",
                [Some("ssh_login"), Some("success"), Some("fztu"), Some("119.137.62.142"), None, None],
            ),
            (
                "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
                [Some("ssh_invalid_user"), Some("failure"), Some("webmaster"), Some("173.234.31.186"), None, None],
            ),
            (
                "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4  user=root",
                [Some("pam_auth_failure"), Some("failure"), Some("root"), Some("218.188.2.4"), None, None],
            ),
            (
                "Aug  2 08:53:24 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash",
                [Some("sudo"), Some("success"), Some("alice"), None, Some("root"), Some("/bin/bash")],
            ),
            (
                "Jun 15 04:06:18 combo su(pam_unix)[21416]: session opened for user cyrus by (uid=0)",
                [Some("su"), Some("success"), None, None, Some("cyrus"), None],
            ),
            (
                "2024-08-02T08:53:24.123456+00:00 web1 su[1]: FAILED su for root by mallory",
                [Some("su"), Some("failure"), Some("mallory"), None, Some("root"), None],
            ),
        ];
        for (line, [activity, result, user, ip, target, resource]) in cases {
            let b = one(line);
            assert_eq!(col(&b, "activity").as_deref(), activity, "{line}");
            assert_eq!(col(&b, "outcome").as_deref(), result, "{line}");
            assert_eq!(col(&b, "actor_user").as_deref(), user, "{line}");
            assert_eq!(col(&b, "src_ip").as_deref(), ip, "{line}");
            assert_eq!(col(&b, "target_user").as_deref(), target, "{line}");
            assert_eq!(col(&b, "target_resource").as_deref(), resource, "{line}");
        }
    }

    #[test]
    fn the_year_comes_from_the_reference_date_and_rolls_back_for_later_months() {
        let n = LinuxAuth::new(2018, 1);
        assert_eq!(n.bsd_time_us("Jan  5 10:00:00"), parse_rfc3339_us("2018-01-05T10:00:00Z"));
        assert_eq!(n.bsd_time_us("Dec 31 23:59:59"), parse_rfc3339_us("2017-12-31T23:59:59Z"));
        assert_eq!(n.bsd_time_us("Feb 29 00:00:00"), None, "2018 has no Feb 29");
    }

    #[test]
    fn other_lines_are_events_and_non_syslog_is_a_dead_letter() {
        let b = one("Jun 14 15:16:02 combo kernel: Linux version 2.6.5");
        assert_eq!(col(&b, "activity").as_deref(), Some("kernel"));
        let mut records = RawRecords::default();
        records.push(1, b"this is not syslog");
        records.push(2, b"Foo 14 15:16:02 combo kernel: x");
        records.push(3, "Jun 14 15:16:02écombo kernel: x".as_bytes());
        records.push(4, "Jun 14 15:16:é combo kernel: x".as_bytes());
        let out = normalize_records(&LinuxAuth::new(2017, 1), records, "t", 0, 0, 16);
        assert_eq!(out.dead_letters.len(), 4);
        assert_eq!(out.dead_letters[1].code.as_str(), "invalid_time");
        // no space after the time, a multibyte character inside it
        assert_eq!(out.dead_letters[2].code.as_str(), "unrecognized_line");
        assert_eq!(out.dead_letters[3].code.as_str(), "invalid_time");
        // a configured year with no year before it does not overflow
        assert_eq!(LinuxAuth::new(i32::MIN, 1).bsd_time_us("Dec 31 23:59:59"), None);
        // A file last modified on 3 December: a line of 10 December is from the year before, one of
        // 4 December (a day of slack) from this year.
        let file = LinuxAuth::for_file_dated(2026, 12, 3);
        let year_of = |t: &str| file.bsd_time_us(t).map(|us| vigil_schema::format_time_us(us)[..4].to_string());
        assert_eq!(year_of("Dec 10 06:55:46").as_deref(), Some("2025"));
        assert_eq!(year_of("Dec  4 23:00:00").as_deref(), Some("2026"));
        assert_eq!(year_of("Jan  1 00:00:00").as_deref(), Some("2026"));
    }
}
