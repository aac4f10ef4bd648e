//! What kind of failure an error is, so that the command line (and the operator reading it) knows what to
//! do next. Every crate's `Error` has a `class()`.
//!
//! | class | meaning | what to do | `vigil` exit code |
//! | --- | --- | --- | --- |
//! | [`ErrorClass::User`] | the config, a flag, a rule, a key or a path is wrong | fix what the message names | 2 |
//! | [`ErrorClass::External`] | a service vigil depends on failed or refused (Kafka, the object store, a disk) | fix or wait for the service, then run again: vigil resumes where the archive ends | 2 |
//! | [`ErrorClass::Internal`] | a bug in vigil | report it with the message | 70 (`EX_SOFTWARE`) |

/// The class of an error; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Something the user gave is wrong: the message says what to fix.
    User,
    /// A service vigil depends on failed or refused: fix it or wait, then run again.
    External,
    /// A bug in vigil.
    Internal,
}

impl ErrorClass {
    /// The process exit code `vigil` ends with for an error of this class.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::User | ErrorClass::External => 2,
            ErrorClass::Internal => 70,
        }
    }

    /// What the user can do, in a few words, for the end of an error message.
    pub fn advice(self) -> &'static str {
        match self {
            ErrorClass::User => "fix what the message names and run again",
            ErrorClass::External => {
                "a service vigil depends on failed or refused; once it is back, run again: vigil resumes where the \
                 archive ends"
            }
            ErrorClass::Internal => "this is a bug in vigil: please report it with this message",
        }
    }
}
