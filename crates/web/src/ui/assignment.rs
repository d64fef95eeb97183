//! The ticket page's "Assign" form and its "Assign to me" button: the API's change,
//! as the signed-in person.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use crate::AppState;
use crate::api::tickets::TicketUpdate;
use crate::input::{ApiJson, ApiPath};
use crate::ui::display;
use crate::ui::flash::Flash;
use crate::ui::form::{CheckedForm, PagePath};
use crate::ui::page;
use crate::ui::viewer::Viewer;

#[derive(Deserialize)]
pub(crate) struct AssignForm {
    /// The user's address; empty: nobody.
    assignee: String,
    /// The list's view the page was opened in.
    #[serde(default)]
    view: String,
}

/// Assigns the ticket to the chosen user, or to nobody.
pub(crate) async fn assign(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(number): PagePath<i64>,
    CheckedForm(form): CheckedForm<AssignForm>,
) -> Response {
    let back = crate::ui::list_view::ticket_href(number, &form.view);
    let email = form.assignee.trim();
    let change = TicketUpdate {
        assignee: Some((!email.is_empty()).then(|| email.to_string())),
        ..TicketUpdate::default()
    };
    match crate::api::tickets::update(
        State(state.clone()),
        viewer.actor.clone(),
        ApiPath(number),
        ApiJson(change),
    )
    .await
    {
        Ok(updated) => {
            let now = updated.0.ticket.assignee.as_ref().map(|a| {
                a.name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| a.email.clone())
            });
            let text = match (updated.0.assignee_changed, now) {
                (true, Some(who)) => format!("The ticket is now assigned to {who}."),
                (true, None) => "The ticket is now assigned to nobody.".to_string(),
                (false, Some(who)) => format!("The ticket was assigned to {who} already."),
                (false, None) => "The ticket was assigned to nobody already.".to_string(),
            };
            page::see_other_with(&state, &back, Flash::done(text))
        }
        Err(error) if error.field() == Some("assignee") => page::see_other_with(
            &state,
            &back,
            Flash::failed(display::sentence(error.message())),
        ),
        Err(error) => page::api_error(&state, Some(&viewer), &error),
    }
}
