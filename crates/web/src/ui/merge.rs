//! The ticket page's "Merge into" form: this ticket into another, by its number; then
//! the other ticket's page, where everything now is.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use crate::AppState;
use crate::api::merge::MergeRequest;
use crate::input::{ApiJson, ApiPath};
use crate::ui::display;
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, PagePath};
use crate::ui::page;
use crate::ui::viewer::Viewer;

#[derive(Deserialize)]
pub(crate) struct MergeForm {
    /// The other ticket's number, with or without its `#`.
    into: String,
}

/// A ticket number as people type it: `123` or `#123`.
pub(crate) fn ticket_number(text: &str) -> Option<i64> {
    text.trim().trim_start_matches('#').trim().parse().ok()
}

/// Merges this ticket into the one named.
pub(crate) async fn merge(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(number): PagePath<i64>,
    CheckedForm(form): CheckedForm<MergeForm>,
) -> Response {
    let back = format!("/tickets/{number}");
    let Some(into) = ticket_number(&form.into) else {
        return page::see_other_with(
            &state,
            &back,
            Flash::failed("Type the number of the ticket to merge into, such as 1234."),
        );
    };
    match crate::api::merge::merge(
        State(state.clone()),
        viewer.actor.clone(),
        ApiPath(number),
        ApiJson(MergeRequest { into }),
    )
    .await
    {
        Ok(_) => page::see_other_with(
            &state,
            &format!("/tickets/{into}"),
            Flash::done(format!("Ticket #{number} was merged into this one.")),
        ),
        // The other ticket missing, or a merge that cannot be: said on this ticket.
        Err(error) if error.field() == Some("into") || error.status().as_u16() == 404 => {
            page::see_other_with(
                &state,
                &back,
                Flash::failed(display::sentence(error.message())),
            )
        }
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}
