//! Decoder fuzzing: arbitrary bytes and arbitrary JSON fed to every frame decoder,
//! the HTTP body decoder, the widget's readers (`shared::mini` over parsed values, where a
//! panic would stop the widget: its build aborts on panic) and the template parser
//! must give a value or an error, never a panic. A long run: `PROPTEST_CASES=200000 cargo test -p shared --test decode_fuzz`.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use shared::protocol::{
    decode, decode_body, decode_from_service, AgentChatFrame, AgentFrame, AgentServerFrame,
    LeaveMessageRequest, SignInRequest, StartRequest, VisitorEvent, VisitorFrame,
};
use shared::template::Template;

fn all_decoders(text: &str) {
    let _ = decode::<VisitorFrame>(text);
    let _ = decode::<AgentFrame>(text);
    let _ = decode::<AgentChatFrame>(text);
    let _ = decode::<VisitorEvent>(text);
    let _ = decode::<AgentServerFrame>(text);
    let _ = decode_from_service::<VisitorEvent>(text);
    let _ = decode_from_service::<AgentServerFrame>(text);
    let _ = decode_body::<StartRequest>(text);
    let _ = decode_body::<LeaveMessageRequest>(text);
    let _ = decode_body::<SignInRequest>(text);
    let _ = shared::mini::visitor_event::<serde_json::Value>(text);
    let _ = shared::mini::site_info::<serde_json::Value>(text);
    let _ = shared::mini::start_response::<serde_json::Value>(text);
    let _ = shared::mini::error_message::<serde_json::Value>(text);
    let _ = Template::parse(text);
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("send"),
            Just("typing"),
            Just("ping"),
            Just("end"),
            Just("accept"),
            Just("set_state"),
            Just("transfer"),
            Just("wrap_up"),
            Just("ticket"),
            Just("welcome"),
            Just("message"),
            Just("ack"),
            Just("error"),
            Just("status"),
            Just("queued"),
            Just("active"),
            Just("agent"),
            Just("ended")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("v".to_string()),
                    Just("type".to_string()),
                    Just("text".to_string()),
                    Just("client_id".to_string()),
                    Just("conversation".to_string()),
                    Just("state".to_string()),
                    Just("typing".to_string()),
                    Just("message".to_string()),
                    Just("status".to_string()),
                    Just("author".to_string()),
                    Just("kind".to_string()),
                    Just("note".to_string()),
                    Just("by".to_string()),
                    Just("seq".to_string()),
                    Just("at".to_string()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        all_decoders(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_json_never_panics(v in json(), versioned in any::<bool>()) {
        let mut v = v;
        if versioned {
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("v".into(), 1.into());
            }
        }
        all_decoders(&v.to_string());
    }

    #[test]
    fn template_sources_never_panic(s in "[a-z<>{} \\\\]{0,40}") {
        let _ = Template::parse(&s);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(decode::<VisitorFrame>(&deep).is_err());
    assert!(shared::mini::visitor_event::<serde_json::Value>(&deep).is_err());
    let obj = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    assert!(decode_body::<StartRequest>(&obj).is_err());
    assert!(shared::mini::site_info::<serde_json::Value>(&obj).is_err());
    let nested = format!(
        r#"{{"v":1,"type":"message","message":{}1{}}}"#,
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    assert!(shared::mini::visitor_event::<serde_json::Value>(&nested).is_err());
}

#[test]
fn extra_fields_are_refused_even_on_ping() {
    assert!(decode::<VisitorFrame>(r#"{"v":1,"type":"ping"}"#).is_ok());
    let e = decode::<VisitorFrame>(r#"{"v":1,"type":"ping","x":1}"#).unwrap_err();
    assert!(e.0.contains("`x`"), "{e}");
    assert!(decode::<AgentChatFrame>(r#"{"v":1,"type":"ping","evil":true}"#).is_err());
}
