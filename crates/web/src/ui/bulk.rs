//! Working several tickets at once from the list: tick them, then set a status, assign
//! them, or merge them into one ticket. A plain form (`POST /tickets/bulk`), so it works
//! without JavaScript; each ticket goes through the same API change as on its own page,
//! and the list comes back in the view it was in, saying what was done.

use axum::extract::State;
use axum::response::Response;

use crate::AppState;
use crate::api::merge::MergeRequest;
use crate::api::tickets::TicketUpdate;
use crate::input::{ApiJson, ApiPath};
use crate::ui::flash::Flash;
use crate::ui::form::CheckedForm;
use crate::ui::merge::ticket_number;
use crate::ui::page;
use crate::ui::tickets::status_label;
use crate::ui::viewer::{Viewer, safe_next};

/// What the bulk form asks for.
enum BulkAction {
    Status(store::TicketStatus),
    /// An address; `None`: nobody.
    Assign(Option<String>),
    Merge(i64),
}

/// Applies one action to every ticked ticket.
pub(crate) async fn apply(
    State(state): State<AppState>,
    viewer: Viewer,
    CheckedForm(fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_string())
            .unwrap_or_default()
    };
    let back = field("back");
    let back = safe_next(&back)
        .filter(|b| b.starts_with("/tickets"))
        .unwrap_or("/tickets")
        .to_string();
    let numbers: Vec<i64> = fields
        .iter()
        .filter(|(key, _)| key == "ticket")
        .filter_map(|(_, value)| value.parse().ok())
        .collect();
    if numbers.is_empty() {
        return page::see_other_with(
            &state,
            &back,
            Flash::failed("Tick the tickets to change first."),
        );
    }
    let action = match field("action").as_str() {
        "status" => match field("status").parse() {
            Ok(status) => BulkAction::Status(status),
            Err(_) => {
                return page::see_other_with(&state, &back, Flash::failed("Pick a status."));
            }
        },
        "assign" => {
            let assignee = field("assignee");
            BulkAction::Assign((!assignee.is_empty() && assignee != "none").then_some(assignee))
        }
        "merge" => match ticket_number(&field("into")) {
            Some(into) => BulkAction::Merge(into),
            None => {
                return page::see_other_with(
                    &state,
                    &back,
                    Flash::failed("Type the number of the ticket to merge them into."),
                );
            }
        },
        _ => {
            return page::see_other_with(
                &state,
                &back,
                Flash::failed("Pick what to do with the ticked tickets."),
            );
        }
    };
    let mut done = 0_usize;
    let mut refused = Vec::new();
    for number in numbers {
        let outcome = match &action {
            BulkAction::Status(status) => crate::api::tickets::update(
                State(state.clone()),
                viewer.actor.clone(),
                ApiPath(number),
                ApiJson(TicketUpdate {
                    status: Some((*status).into()),
                    ..TicketUpdate::default()
                }),
            )
            .await
            .map(|_| ()),
            BulkAction::Assign(assignee) => crate::api::tickets::update(
                State(state.clone()),
                viewer.actor.clone(),
                ApiPath(number),
                ApiJson(TicketUpdate {
                    assignee: Some(assignee.clone()),
                    ..TicketUpdate::default()
                }),
            )
            .await
            .map(|_| ()),
            // The target itself among the ticked ones stays as it is.
            BulkAction::Merge(into) if *into == number => continue,
            BulkAction::Merge(into) => crate::api::merge::merge(
                State(state.clone()),
                viewer.actor.clone(),
                ApiPath(number),
                ApiJson(MergeRequest { into: *into }),
            )
            .await
            .map(|_| ()),
        };
        match outcome {
            Ok(()) => done += 1,
            Err(error) => refused.push(format!("#{number}: {}", page::api_message(&error))),
        }
    }
    let what = match &action {
        BulkAction::Status(status) => format!("set to {}", status_label(*status)),
        BulkAction::Assign(Some(email)) => format!("assigned to {email}"),
        BulkAction::Assign(None) => "assigned to nobody".to_string(),
        BulkAction::Merge(into) => format!("merged into #{into}"),
    };
    let tickets = |n: usize| {
        if n == 1 {
            "1 ticket".to_string()
        } else {
            format!("{n} tickets")
        }
    };
    let flash = if refused.is_empty() {
        Flash::done(format!("{} {what}.", tickets(done)))
    } else {
        Flash::failed(format!(
            "{} {what}; not changed: {}",
            tickets(done),
            refused.join(" ")
        ))
    };
    page::see_other_with(&state, &back, flash)
}
