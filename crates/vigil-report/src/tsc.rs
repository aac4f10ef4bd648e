//! The SOC 2 Trust Services Criteria the rule packs map to, in the AICPA's words (2017 Trust Services
//! Criteria, revised points of focus 2022) and in plain words for the reader of a workpaper.

/// One criterion.
#[derive(Debug, Clone, Copy)]
pub struct Criterion {
    /// Its id, such as `CC6.1`.
    pub id: &'static str,
    /// A short name.
    pub name: &'static str,
    /// What it asks, in plain words.
    pub plain: &'static str,
    /// The criterion's text.
    pub text: &'static str,
}

/// The criteria vigil's packs use (and their neighbours an auditor tests with them).
pub const CRITERIA: &[Criterion] = &[
    Criterion {
        id: "CC4.1",
        name: "Monitoring activities",
        plain: "The organisation checks, continuously or periodically, that its controls are in place and working.",
        text: "COSO Principle 16: The entity selects, develops, and performs ongoing and/or separate evaluations to \
               ascertain whether the components of internal control are present and functioning.",
    },
    Criterion {
        id: "CC5.2",
        name: "Technology general controls",
        plain: "The organisation has general controls over its technology (access, changes, operations).",
        text: "COSO Principle 11: The entity also selects and develops general control activities over technology \
               to support the achievement of objectives.",
    },
    Criterion {
        id: "CC6.1",
        name: "Logical access security",
        plain: "Only authorised people and systems can get into protected systems and data, and sign-in is secured \
                (for example with multi-factor authentication).",
        text: "The entity implements logical access security software, infrastructure, and architectures over \
               protected information assets to protect them from security events to meet the entity's objectives.",
    },
    Criterion {
        id: "CC6.2",
        name: "User registration and removal",
        plain: "Accounts are created only after approval and removed when access is no longer authorised.",
        text: "Prior to issuing system credentials and granting system access, the entity registers and authorizes \
               new internal and external users whose access is administered by the entity. For those users whose \
               access is administered by the entity, user system credentials are removed when user access is no \
               longer authorized.",
    },
    Criterion {
        id: "CC6.3",
        name: "Role-based access and least privilege",
        plain: "Access is granted, changed and removed according to role, with least privilege and segregation of \
                duties.",
        text: "The entity authorizes, modifies, or removes access to data, software, functions, and other protected \
               information assets based on roles, responsibilities, or the system design and changes, giving \
               consideration to the concepts of least privilege and segregation of duties, to meet the entity's \
               objectives.",
    },
    Criterion {
        id: "CC6.6",
        name: "Boundary protection",
        plain: "Systems are protected against threats from outside the system boundary (the internet, partners).",
        text: "The entity implements logical access security measures to protect against threats from sources \
               outside its system boundaries.",
    },
    Criterion {
        id: "CC6.7",
        name: "Data in transit and removal",
        plain: "Moving or removing information is limited to authorised users and processes, and protected on the \
                way.",
        text: "The entity restricts the transmission, movement, and removal of information to authorized internal \
               and external users and processes, and protects it during transmission, movement, or removal to meet \
               the entity's objectives.",
    },
    Criterion {
        id: "CC6.8",
        name: "Malicious software",
        plain: "Unauthorised or malicious software is prevented or detected and acted upon.",
        text: "The entity implements controls to prevent or detect and act upon the introduction of unauthorized or \
               malicious software to meet the entity's objectives.",
    },
    Criterion {
        id: "CC7.1",
        name: "Configuration and vulnerability monitoring",
        plain: "Configuration changes that open weaknesses, and newly found vulnerabilities, are detected.",
        text: "To meet its objectives, the entity uses detection and monitoring procedures to identify (1) changes \
               to configurations that result in the introduction of new vulnerabilities, and (2) susceptibilities \
               to newly discovered vulnerabilities.",
    },
    Criterion {
        id: "CC7.2",
        name: "Security monitoring",
        plain: "Systems are watched for signs of attack, error or disaster, and what is found is analysed.",
        text: "The entity monitors system components and the operation of those components for anomalies that are \
               indicative of malicious acts, natural disasters, and errors affecting the entity's ability to meet \
               its objectives; anomalies are analyzed to determine whether they represent security events.",
    },
    Criterion {
        id: "CC7.3",
        name: "Security event evaluation",
        plain: "Each security event is evaluated to decide whether it is an incident, and acted upon.",
        text: "The entity evaluates security events to determine whether they could or have resulted in a failure \
               of the entity to meet its objectives (security incidents) and, if so, takes actions to prevent or \
               address such failures.",
    },
    Criterion {
        id: "CC7.4",
        name: "Incident response",
        plain: "Incidents are handled by a defined response programme: understood, contained, fixed and \
                communicated.",
        text: "The entity responds to identified security incidents by executing a defined incident response \
               program to understand, contain, remediate, and communicate security incidents, as appropriate.",
    },
    Criterion {
        id: "CC7.5",
        name: "Incident recovery",
        plain: "The organisation recovers from incidents.",
        text: "The entity identifies, develops, and implements activities to recover from identified security \
               incidents.",
    },
    Criterion {
        id: "CC8.1",
        name: "Change management",
        plain: "Changes to infrastructure, data, software and procedures are authorised, tested, approved and \
                recorded.",
        text: "The entity authorizes, designs, develops or acquires, configures, documents, tests, approves, and \
               implements changes to infrastructure, data, software, and procedures to meet its objectives.",
    },
    Criterion {
        id: "A1.2",
        name: "Availability: environmental protection, backup and recovery",
        plain: "Backups, recovery infrastructure and environmental protections are in place and monitored.",
        text: "The entity authorizes, designs, develops or acquires, implements, operates, approves, maintains, and \
               monitors environmental protections, software, data back-up processes, and recovery infrastructure to \
               meet its objectives.",
    },
    Criterion {
        id: "C1.1",
        name: "Confidential information",
        plain: "Confidential information is identified and kept confidential.",
        text: "The entity identifies and maintains confidential information to meet the entity's objectives \
               related to confidentiality.",
    },
];

/// The criterion `id`, when the table holds it.
pub fn criterion(id: &str) -> Option<&'static Criterion> {
    CRITERIA.iter().find(|c| c.id == id)
}

/// Whether `id` looks like a criterion id (`CC6.1`, `A1.2`, `PI1.3`): letters, digits, one dot. Only such
/// ids become file names.
pub fn is_criterion_id(id: &str) -> bool {
    let Some((head, tail)) = id.split_once('.') else { return false };
    let letters = head.trim_end_matches(|c: char| c.is_ascii_digit());
    (1..=3).contains(&letters.len())
        && letters.chars().all(|c| c.is_ascii_uppercase())
        && head.len() > letters.len()
        && !tail.is_empty()
        && tail.len() <= 3
        && tail.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_they_name_files() {
        for good in ["CC6.1", "A1.2", "PI1.3", "C1.1", "CC10.12"] {
            assert!(is_criterion_id(good), "{good}");
        }
        for bad in ["", "CC6", "../x", "CC6.1/..", "cc6.1", "CC.1", "CC6.1a", "ABCD1.1"] {
            assert!(!is_criterion_id(bad), "{bad}");
        }
        assert!(CRITERIA.iter().all(|c| is_criterion_id(c.id)));
        assert_eq!(criterion("CC7.3").map(|c| c.name), Some("Security event evaluation"));
    }
}
