//! Keyset paging of the ticket list: walking "next" from the first page visits every
//! ticket exactly once, in the list's order, for every sort order, also when many tickets
//! share a sort key (the same update time, the same requester, the same status); walking
//! "previous" back gives the same pages; a page by offset ("page N") agrees with them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ticket_fixture::open_ticket;
use common::{T0, TestDb, add_mailbox, on_both_backends};
use store::{Store, StoreError, TicketCursor, TicketFilter, TicketSort, TicketStatus, Toward};

on_both_backends!(next_and_previous_pages_visit_every_ticket_once_in_order_despite_ties,);

/// Every page from the first, following `next`; each page's tickets' ids.
async fn walk_forward(store: &Store, filter: &TicketFilter) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut filter = filter.clone();
    loop {
        let page = store.ticket_page(&filter).await.unwrap();
        pages.push(page.tickets.iter().map(|t| t.id).collect::<Vec<_>>());
        match page.next {
            Some(next) => {
                assert_eq!(next.toward, Toward::After);
                // Through its text form, as a link carries it.
                let text = next.to_param();
                filter.cursor =
                    Some(TicketCursor::parse(&text, filter.sort, Toward::After).unwrap());
            }
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

async fn next_and_previous_pages_visit_every_ticket_once_in_order_despite_ties(db: &TestDb) {
    let store = &db.store;
    let mailbox = add_mailbox(store, "support").await;
    // 23 tickets: updated in groups of 4 at the same instant, 3 requesters, mixed
    // statuses: every sort key has ties spanning page boundaries (pages of 5).
    for i in 0..23_i64 {
        let requester = format!("r{}@example.org", i % 3);
        let t = open_ticket(
            store,
            mailbox.id,
            &requester,
            "Help",
            &format!("<m{i}@x>"),
            T0 + (i / 4) * 1_000,
        )
        .await;
        let status = TicketStatus::ALL[usize::try_from(i % 5).unwrap()];
        if status != TicketStatus::New {
            // The change keeps the group's update time: ties stay ties.
            store
                .set_ticket_status(t.id, status, T0 + (i / 4) * 1_000)
                .await
                .unwrap();
        }
    }
    for sort in TicketSort::ALL {
        let everything = TicketFilter {
            sort,
            limit: 1_000,
            ..TicketFilter::default()
        };
        let all: Vec<i64> = store
            .tickets(&everything)
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(all.len(), 23);

        let filter = TicketFilter {
            sort,
            limit: 5,
            ..TicketFilter::default()
        };
        let pages = walk_forward(store, &filter).await;
        assert_eq!(pages.len(), 5, "{sort}: 23 tickets are 5 pages of 5");
        assert_eq!(pages.concat(), all, "{sort}: every ticket once, in order");

        // Back from the last page, following `previous`.
        let mut back = vec![pages[4].clone()];
        let last = store
            .ticket_page(&TicketFilter {
                cursor: Some(TicketCursor::at(
                    &store.ticket_by_id(pages[3][4]).await.unwrap().unwrap(),
                    sort,
                    Toward::After,
                )),
                ..filter.clone()
            })
            .await
            .unwrap();
        assert_eq!(last.next, None, "{sort}: the last page has no next");
        let mut previous = last.previous;
        while let Some(cursor) = previous {
            assert_eq!(cursor.toward, Toward::Before);
            let page = store
                .ticket_page(&TicketFilter {
                    cursor: Some(cursor),
                    ..filter.clone()
                })
                .await
                .unwrap();
            assert!(
                page.next.is_some(),
                "{sort}: a page before another has a next"
            );
            back.push(page.tickets.iter().map(|t| t.id).collect());
            previous = page.previous;
        }
        back.reverse();
        assert_eq!(back, pages, "{sort}: previous pages are the same pages");

        // Page 3 by offset is the third page of the walk.
        let third = store
            .ticket_page(&TicketFilter {
                offset: 10,
                ..filter.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            third.tickets.iter().map(|t| t.id).collect::<Vec<_>>(),
            pages[2]
        );
        assert!(third.previous.is_some() && third.next.is_some());
    }
}

#[test]
fn a_cursor_from_another_order_or_typed_by_hand_is_refused() {
    for (text, sort) in [
        ("12.ann@example.org", TicketSort::LastActivity),
        ("abc.5", TicketSort::Created),
        ("5", TicketSort::Status),
        ("", TicketSort::Requester),
    ] {
        let parsed = TicketCursor::parse(text, sort, Toward::After);
        assert!(
            matches!(
                parsed,
                Err(StoreError::Parse {
                    what: "page cursor",
                    ..
                })
            ),
            "{text:?} as a {sort} cursor"
        );
    }
    let requester = TicketCursor::parse(
        "12.ann.b@example.org",
        TicketSort::Requester,
        Toward::Before,
    )
    .unwrap();
    assert_eq!(requester.to_param(), "12.ann.b@example.org");
}
