//! What the ticket list is showing: its filters, view ("Mine", "Unassigned", "All") and
//! order, read once from the query string. The list, the ticket page (its previous and
//! next ticket, its way back) and the bulk form carry the same view in their links, so
//! an agent working through the list never loses their place.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{AssigneeFilter, Ticket, TicketCursor, TicketFilter, TicketSort, TicketStatus, Toward};

use crate::AppState;
use crate::api::assignment::AssigneeChoice;
use crate::ui::form::query_string;
use crate::ui::page;
use crate::ui::viewer::Viewer;

/// The list's query string. Also read on the ticket page, which links are given it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) status: Option<String>,
    pub(crate) mailbox: Option<String>,
    pub(crate) q: Option<String>,
    /// `me`, `none`, or a user's address; empty: anyone.
    pub(crate) assignee: Option<String>,
    pub(crate) sort: Option<String>,
    /// Keyset paging: the page after or before this cursor.
    pub(crate) after: Option<String>,
    pub(crate) before: Option<String>,
    /// A page by number ("jump to"), when no cursor is given.
    pub(crate) page: Option<String>,
}

/// The list's filters, view and order (not its page).
#[derive(Debug, Clone, Default)]
pub(crate) struct ListView {
    pub(crate) status: Option<TicketStatus>,
    pub(crate) mailbox: Option<i64>,
    pub(crate) q: String,
    /// As given: `me`, `none`, an address, or empty for anyone.
    pub(crate) assignee: String,
    pub(crate) sort: TicketSort,
}

fn text(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

impl ListView {
    /// The view a query names, or the 400 page for a value no form offers.
    pub(crate) fn read(
        state: &AppState,
        viewer: &Viewer,
        query: &ListQuery,
    ) -> Result<ListView, Response> {
        let refuse =
            |sentence: &str| page::error(state, Some(viewer), StatusCode::BAD_REQUEST, sentence);
        let status = match text(&query.status).map(|s| s.parse::<TicketStatus>()) {
            None => None,
            Some(Ok(status)) => Some(status),
            Some(Err(_)) => {
                return Err(refuse(
                    "There is no such ticket status. Pick one from the list.",
                ));
            }
        };
        let mailbox = match text(&query.mailbox).map(|m| m.parse::<i64>()) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => {
                return Err(refuse("There is no such mailbox. Pick one from the list."));
            }
        };
        let sort = match text(&query.sort).map(|s| s.parse::<TicketSort>()) {
            None => TicketSort::default(),
            Some(Ok(sort)) => sort,
            Some(Err(_)) => return Err(refuse("There is no such order. Pick one from the list.")),
        };
        Ok(ListView {
            status,
            mailbox,
            q: text(&query.q).unwrap_or_default(),
            assignee: text(&query.assignee).unwrap_or_default().to_lowercase(),
            sort,
        })
    }

    /// The store's filter for this view (the first page; the caller sets the page).
    pub(crate) async fn filter(
        &self,
        state: &AppState,
        viewer: &Viewer,
    ) -> Result<TicketFilter, Response> {
        let assignee = if self.assignee.is_empty() {
            AssigneeFilter::Any
        } else {
            AssigneeChoice::parse(&self.assignee)
                .filter(state, &viewer.actor)
                .await
                .map_err(|error| page::api_error(state, Some(viewer), &error))?
        };
        Ok(TicketFilter {
            // An agent's list, its neighbours and its bulk changes stay in their mailboxes.
            scope: viewer.actor.scope().clone(),
            status: self.status,
            mailbox_id: self.mailbox,
            assignee,
            text: (!self.q.is_empty()).then(|| self.q.clone()),
            sort: self.sort,
            ..TicketFilter::default()
        })
    }

    /// Whether any filter narrows the list (the empty state says so).
    pub(crate) fn filtered(&self) -> bool {
        self.status.is_some() || self.mailbox.is_some() || !self.q.is_empty()
    }

    /// The view's query parameters, then `extra`; the default order is left out.
    pub(crate) fn params(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut params = vec![
            (
                "status",
                self.status
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            ),
            (
                "mailbox",
                self.mailbox.map(|id| id.to_string()).unwrap_or_default(),
            ),
            ("q", self.q.clone()),
            ("assignee", self.assignee.clone()),
            (
                "sort",
                if self.sort == TicketSort::default() {
                    String::new()
                } else {
                    self.sort.as_str().to_string()
                },
            ),
        ];
        params.extend(extra.iter().cloned());
        params
    }

    /// `path` with this view's query (and `extra`).
    pub(crate) fn href(&self, path: &str, extra: &[(&'static str, String)]) -> String {
        format!("{path}{}", query_string(&self.params(extra)))
    }

    /// This view with another status (a status count's link).
    pub(crate) fn with_status(&self, status: Option<TicketStatus>) -> ListView {
        ListView {
            status,
            ..self.clone()
        }
    }

    /// This view with another assignee (a "Mine"/"Unassigned"/"All" tab).
    pub(crate) fn with_assignee(&self, assignee: &str) -> ListView {
        ListView {
            assignee: assignee.to_string(),
            ..self.clone()
        }
    }

    /// The tickets just before and just after `ticket` in this view: the ticket page's
    /// "Previous" and "Next", read by keyset from the ticket's own place.
    pub(crate) async fn neighbours(
        &self,
        state: &AppState,
        viewer: &Viewer,
        ticket: &Ticket,
    ) -> Result<(Option<i64>, Option<i64>), Response> {
        // A view that names a user no longer there has no neighbours, not an error.
        let Ok(filter) = self.filter(state, viewer).await else {
            return Ok((None, None));
        };
        let mut found = [None, None];
        for (slot, toward) in found.iter_mut().zip([Toward::Before, Toward::After]) {
            let probe = TicketFilter {
                cursor: Some(TicketCursor::at(ticket, self.sort, toward)),
                limit: 1,
                ..filter.clone()
            };
            *slot = match state.store().tickets(&probe).await {
                Ok(tickets) => tickets.first().map(|t| t.number),
                Err(error) => return Err(page::api_error(state, Some(viewer), &error.into())),
            };
        }
        Ok((found[0], found[1]))
    }
}

/// The ticket page after a form on it, keeping the list's view the form carried back
/// (its `view` field: the page's query string). Anything but a plain query string is
/// dropped: this only ever leads to the ticket's own page.
pub(crate) fn ticket_href(number: i64, view: &str) -> String {
    let view = view.trim();
    let plain = view.starts_with('?')
        && view.len() <= 2000
        && !view.contains(['#', '\\'])
        && !view.chars().any(char::is_control);
    if plain {
        format!("/tickets/{number}{view}")
    } else {
        format!("/tickets/{number}")
    }
}

/// How each order is offered in the list's "Sort" field.
pub(crate) fn sort_label(sort: TicketSort) -> &'static str {
    match sort {
        TicketSort::LastActivity => "Last activity",
        TicketSort::Created => "Created",
        TicketSort::Requester => "Requester",
        TicketSort::Status => "Status",
    }
}
