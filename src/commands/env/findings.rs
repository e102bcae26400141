//! The doctor's report: findings in plain words, each with a stable cause name (for
//! `--json`), a severity and, when something is wrong, the command that fixes it.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The key cannot work like this.
    Problem,
    /// It may work, but something is likely to bite.
    Warning,
    /// Worth knowing.
    Note,
    /// A check that passed.
    Ok,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Problem => "problem",
            Severity::Warning => "warning",
            Severity::Note => "note",
            Severity::Ok => "ok",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub cause: &'static str,
    pub severity: Severity,
    pub message: String,
    pub fix: Option<String>,
}

/// A key the doctor looked at: where it came from and its masked form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExaminedKey {
    pub source: String,
    pub masked: String,
    pub format: &'static str,
}

#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub keys: Vec<ExaminedKey>,
}

impl Report {
    pub fn add(&mut self, cause: &'static str, severity: Severity, message: impl Into<String>, fix: Option<String>) {
        self.findings.push(Finding { cause, severity, message: message.into(), fix });
    }

    pub fn problem(&mut self, cause: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.add(cause, Severity::Problem, message, Some(fix.into()));
    }

    pub fn warning(&mut self, cause: &'static str, message: impl Into<String>, fix: Option<String>) {
        self.add(cause, Severity::Warning, message, fix);
    }

    pub fn note(&mut self, cause: &'static str, message: impl Into<String>) {
        self.add(cause, Severity::Note, message, None);
    }

    pub fn passed(&mut self, cause: &'static str, message: impl Into<String>) {
        self.add(cause, Severity::Ok, message, None);
    }

    /// Usable: a key was found and nothing is a problem.
    pub fn usable(&self) -> bool {
        !self.keys.is_empty() && !self.findings.iter().any(|finding| finding.severity == Severity::Problem)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "usable": self.usable(),
            "keys": self.keys.iter().map(|key| json!({"source": key.source, "maskedKey": key.masked, "format": key.format})).collect::<Vec<_>>(),
            "findings": self.findings.iter().map(|finding| json!({
                "cause": finding.cause,
                "severity": finding.severity.label(),
                "message": finding.message,
                "fix": finding.fix,
            })).collect::<Vec<_>>(),
        })
    }

    /// The report as text: one block per finding, problems first, then the verdict.
    pub fn render(&self) -> String {
        let mut output = String::new();
        for key in &self.keys {
            output.push_str(&format!("DASHSCOPE_API_KEY from {}: {} ({})\n", key.source, key.masked, key.format));
        }
        if !self.keys.is_empty() {
            output.push('\n');
        }
        let order = [Severity::Problem, Severity::Warning, Severity::Note, Severity::Ok];
        for severity in order {
            for finding in self.findings.iter().filter(|finding| finding.severity == severity) {
                let label = format!("{}:", severity.label());
                output.push_str(&format!("{label:<9}{}\n", finding.message));
                if let Some(fix) = &finding.fix {
                    let mut lines = fix.lines();
                    if let Some(first) = lines.next() {
                        output.push_str(&format!("{:<9}fix: {first}\n", ""));
                    }
                    for line in lines {
                        output.push_str(&format!("{:<14}{line}\n", ""));
                    }
                }
            }
        }
        let problems = self.findings.iter().filter(|finding| finding.severity == Severity::Problem).count();
        output.push('\n');
        output.push_str(&match (self.usable(), problems) {
            (true, _) => "Verdict: the key is usable.\n".to_string(),
            (false, 0) => "Verdict: no key was found.\n".to_string(),
            (false, 1) => "Verdict: the key is not usable: 1 problem, see above.\n".to_string(),
            (false, count) => format!("Verdict: the key is not usable: {count} problems, see above.\n"),
        });
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_come_first_with_their_fix_and_decide_the_verdict() {
        let mut report = Report::default();
        report.keys.push(ExaminedKey {
            source: "this process's environment".into(),
            masked: "sk-ws-Ab3x****9xYz".into(),
            format: "secure",
        });
        report.passed("key_format_ok", "it is a secure key");
        report.problem("key_disabled", "the server says the key is disabled", "create a new key\nthen run keygate env setup");
        assert!(!report.usable());
        assert_eq!(
            report.render(),
            "DASHSCOPE_API_KEY from this process's environment: sk-ws-Ab3x****9xYz (secure)\n\n\
             problem: the server says the key is disabled\n         fix: create a new key\n              then run keygate env setup\n\
             ok:      it is a secure key\n\nVerdict: the key is not usable: 1 problem, see above.\n"
        );
        assert_eq!(report.to_json()["findings"][1]["cause"], "key_disabled");
    }
}
