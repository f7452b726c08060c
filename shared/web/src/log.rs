//! A conversation's messages as a client holds them.
//!
//! Rules (the service numbers a conversation's messages 1, 2, 3, … and a socket
//! resumes "after" a number, sending every later one):
//! - A message is held once per sequence number, in order, whatever order and however
//!   often it arrives (a resume may resend what a client already has).
//! - A client resumes after [`contiguous_seq`], the highest number held with none
//!   missing below it, never after the highest number seen: a frame lost before a
//!   later one arrived is then sent again.
//! - A message that skips a number ([`is_gap`]) tells the client to resume at once.

use shared::transcript::Message;

/// Adds `m` in order unless its sequence number is held; whether it was added.
pub fn add_once(messages: &mut Vec<Message>, m: Message) -> bool {
    match messages.binary_search_by_key(&m.seq, |x| x.seq) {
        Ok(_) => false,
        Err(at) => {
            messages.insert(at, m);
            true
        }
    }
}

/// The highest sequence number held with none missing below it (0 if none).
pub fn contiguous_seq(messages: &[Message]) -> u64 {
    let mut last = 0;
    for m in messages {
        if m.seq == last + 1 {
            last = m.seq;
        } else if m.seq > last + 1 {
            break;
        }
    }
    last
}

/// Whether a message numbered `seq` skips a number after what `messages` holds.
pub fn is_gap(messages: &[Message], seq: u64) -> bool {
    seq > contiguous_seq(messages) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::transcript::Author;

    fn msg(seq: u64) -> Message {
        Message {
            seq,
            client_id: None,
            author: Author::System,
            text: format!("m{seq}"),
            note: None,
            at: chrono::DateTime::UNIX_EPOCH,
            attachment: None,
        }
    }

    #[test]
    fn messages_are_held_once_in_order_and_gaps_are_found() {
        let mut log = vec![];
        for seq in [2, 1, 2, 4, 1] {
            add_once(&mut log, msg(seq));
        }
        let seqs: Vec<u64> = log.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2, 4]);
        assert_eq!(contiguous_seq(&log), 2);
        assert!(!is_gap(&log, 3));
        assert!(is_gap(&log, 5));
        assert!(add_once(&mut log, msg(3)));
        assert_eq!(contiguous_seq(&log), 4);
        assert_eq!(contiguous_seq(&[]), 0);
    }
}
