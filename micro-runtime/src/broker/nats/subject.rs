//! Topics as NATS subjects: the checks on topics and queue groups, and the subjects of the
//! topics published to, interned so that a publish makes its subject without allocating.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Mutex;

use async_nats::Subject;

use crate::error::{Code, Error, Result};

/// How many topics' subjects each thread keeps ready.
const RECENT_SUBJECTS: usize = 16;
/// How many topics' subjects are kept for the life of the program.
const INTERNED_TOPICS: usize = 1024;

/// The topics published to, checked and kept for the life of the program (up to
/// [`INTERNED_TOPICS`]): their subjects are static, made, cloned and dropped without an
/// allocation or an atomic. Programs publish to a handful of topics; past the limit, a topic's
/// subject is a copy made for each publish.
static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

thread_local! {
    /// The interned topics this thread published to last (up to [`RECENT_SUBJECTS`]): found
    /// again without a lock.
    static RECENT: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// The subject of `topic`, a literal subject.
pub(super) fn subject(topic: &str) -> Result<Subject> {
    let recent = RECENT.with_borrow(|recent| recent.iter().rev().find(|t| **t == topic).copied());
    if let Some(topic) = recent {
        return Ok(Subject::from_static(topic));
    }
    check_topic(topic, false)?;
    let interned = {
        let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        match interned.get(topic) {
            Some(topic) => Some(*topic),
            None if interned.len() < INTERNED_TOPICS => {
                let topic: &'static str = Box::leak(topic.into());
                interned.insert(topic);
                Some(topic)
            }
            None => None,
        }
    };
    let Some(topic) = interned else {
        return Ok(Subject::from(topic));
    };
    RECENT.with_borrow_mut(|recent| {
        if recent.len() == RECENT_SUBJECTS {
            recent.remove(0);
        }
        recent.push(topic);
    });
    Ok(Subject::from_static(topic))
}

/// A NATS subject: dot-separated non-empty tokens without whitespace; `*` and a final `>`
/// are wildcards, allowed where `wildcards`.
pub(super) fn check_topic(topic: &str, wildcards: bool) -> Result<()> {
    let mut tokens = topic.split('.').peekable();
    let mut ok = !topic.is_empty();
    while let Some(token) = tokens.next() {
        let last = tokens.peek().is_none();
        ok &= !token.is_empty() && !token.bytes().any(|c| c.is_ascii_whitespace());
        match token {
            "*" => ok &= wildcards,
            ">" => ok &= wildcards && last,
            _ => {}
        }
    }
    if ok {
        Ok(())
    } else if wildcards {
        Err(Error::new(
            Code::InvalidArgument,
            format!("nats: {topic:?} is not a subject (dot-separated tokens, no spaces)"),
        ))
    } else {
        Err(Error::new(
            Code::InvalidArgument,
            format!(
                "nats: {topic:?} is not a literal subject (dot-separated tokens, no spaces, no wildcards)"
            ),
        ))
    }
}

pub(super) fn check_queue(queue: &str) -> Result<()> {
    if queue.bytes().any(|c| c.is_ascii_whitespace()) {
        return Err(Error::new(
            Code::InvalidArgument,
            format!("nats: queue group {queue:?} contains whitespace"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert!(check_topic("orders.new", false).is_ok());
        assert!(check_topic("orders.*", true).is_ok());
        assert!(check_topic("orders.>", true).is_ok());
        assert!(check_topic("orders.*", false).is_err());
        assert!(check_topic("orders.>.x", true).is_err());
        assert!(check_topic("orders..new", true).is_err());
        assert!(check_topic("orders.new.", true).is_err());
        assert!(check_topic("orders new", true).is_err());
        assert!(check_topic("", true).is_err());
    }

    #[test]
    fn subjects_of_topics() {
        // Checked on the way in, found again after; past the interning limit, still right.
        assert!(subject("orders.*").is_err());
        assert!(subject("orders new").is_err());
        for round in 0..2 {
            for i in 0..INTERNED_TOPICS + 100 {
                let topic = format!("subjects.test.{i}");
                let subject = subject(&topic).unwrap();
                assert_eq!(subject.as_str(), topic, "round {round}");
            }
        }
        assert_eq!(subject("orders.new").unwrap().as_str(), "orders.new");
        assert!(subject("orders.*").is_err());
    }
}
