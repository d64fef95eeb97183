//! Search through the API as agents type it (issue 15): real mail through the real
//! processor, then `q` with words in any order, accents folded, the quoted part, a
//! snippet with its hits, status counts that count the search, a filter beside it, and
//! a ticket number that finds its ticket and says where to jump.

use axum::http::StatusCode;
use serde_json::Value;

use crate::common::{Desk, mail};
use crate::postgres::on_both_backends;

on_both_backends!(search_finds_words_shows_snippets_counts_results_and_jumps_to_numbers);

/// The snippet's found words.
fn hits(item: &Value) -> Vec<String> {
    item["snippet"]["pieces"]
        .as_array()
        .expect("snippet pieces")
        .iter()
        .filter(|p| p["hit"] == true)
        .map(|p| p["text"].as_str().expect("text").to_string())
        .collect()
}

fn numbers(page: &Value) -> Vec<i64> {
    let mut numbers: Vec<i64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["number"].as_i64().expect("number"))
        .collect();
    numbers.sort();
    numbers
}

async fn search_finds_words_shows_snippets_counts_results_and_jumps_to_numbers(desk: Desk) {
    let support = desk.mailbox("support", "support@example.com").await;
    let sales = desk.mailbox("sales", "sales@example.com").await;
    desk.deliver(
        support,
        &mail(
            "r1@example.com",
            "=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>",
            "Refund request (urgent)",
            "Please refund my order.\r\n\r\nOn Monday Bob wrote:\r\n> the parcel never came",
        ),
    )
    .await;
    desk.deliver(
        support,
        &mail(
            "c1@example.com",
            "Carol <carol@example.org>",
            "Printer",
            "It crashes every morning.",
        ),
    )
    .await;
    desk.deliver(
        sales,
        &mail(
            "c2@example.com",
            "Dan <dan@example.org>",
            "Shop",
            "The shop crashes at checkout.",
        ),
    )
    .await;
    desk.process().await;
    let agent = desk.agent_session().await;
    let list = |query: &str| {
        let agent = agent.clone();
        let desk = &desk;
        let query = query.to_string();
        async move {
            let reply = desk
                .get(&format!("/api/v1/tickets?{query}"))
                .cookie(&agent)
                .send()
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text());
            reply.json()
        }
    };

    let all = list("").await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["jump_to"], Value::Null);
    assert_eq!(all["items"][0]["snippet"], Value::Null, "not searching");
    let refund_number = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["subject"] == "Refund request (urgent)")
        .expect("the refund ticket")["number"]
        .as_i64()
        .unwrap();

    // Words in any order, punctuation and accents as typed.
    for q in [
        "refund%20request%20urgent",
        "urgent%20REFUND",
        "muller",
        "M%C3%BCller",
    ] {
        let page = list(&format!("q={q}")).await;
        assert_eq!(numbers(&page), [refund_number], "{q}");
    }
    // Only in the quoted part: the snippet shows it there, marked.
    let page = list("q=parcel").await;
    assert_eq!(numbers(&page), [refund_number]);
    let item = &page["items"][0];
    assert_eq!(item["snippet"]["field"], "quoted");
    assert_eq!(hits(item), ["parcel"]);

    // A word in many bodies; the counts count the search.
    let crashes = list("q=crashes").await;
    assert_eq!(crashes["total"], 2);
    assert_eq!(crashes["status_counts"]["new"], 2);
    assert_eq!(hits(&crashes["items"][0]), ["crashes"]);
    assert_eq!(crashes["items"][0]["snippet"]["field"], "message");
    let in_sales = list(&format!("q=crashes&mailbox={sales}")).await;
    assert_eq!(in_sales["total"], 1);
    assert_eq!(in_sales["items"][0]["subject"], "Shop");
    assert_eq!(in_sales["status_counts"]["new"], 1);
    assert_eq!(list("q=crashes%20refund").await["total"], 0);
    assert_eq!(list("q=%22morning%20every%22").await["total"], 0);
    assert_eq!(list("q=%22every%20morning%22").await["total"], 1);
    // Query syntax is only text.
    for q in ["%22", "(", "*", "NEAR(", "a%3Ab", "%27", "-x", "%5C"] {
        list(&format!("q={q}")).await;
    }

    // A ticket number, with or without its sign: found first, and where to jump.
    for q in [format!("{refund_number}"), format!("%23{refund_number}")] {
        let page = list(&format!("q={q}")).await;
        assert_eq!(page["jump_to"], refund_number, "{q}");
        assert_eq!(page["items"][0]["number"], refund_number);
        assert_eq!(page["items"][0]["snippet"], Value::Null);
    }
    assert_eq!(list("q=%23987654").await["jump_to"], Value::Null);
}
