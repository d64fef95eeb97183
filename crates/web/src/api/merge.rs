//! Merging a ticket into another (`POST /api/v1/tickets/{A}/merge {"into": B}`): a
//! customer who wrote twice about one thing gets one ticket. The store moves everything
//! in one transaction; A stays as a pointer (`merged_into`) and later mail naming it
//! lands in B.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::tickets::{TicketSummary, find};
use crate::auth::Actor;
use crate::error::{ApiResult, ErrorBody};
use crate::input::{ApiJson, ApiPath};

/// Which ticket to merge into.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The number of the ticket that takes this one's mail and history.
    pub into: i64,
}

/// Both tickets after the merge.
#[derive(Debug, Serialize, ToSchema)]
pub struct Merged {
    /// The merged ticket: closed, with `merged_into` set.
    pub merged: TicketSummary,
    /// The ticket it joined, now holding both tickets' mail and history.
    pub into: TicketSummary,
}

/// Merges this ticket into another.
#[utoipa::path(
    post, path = "/api/v1/tickets/{number}/merge", tag = "tickets",
    params(("number" = i64, Path, description = "The number of the ticket to merge")),
    request_body = MergeRequest,
    responses(
        (status = 200, description = "Merged", body = Merged),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No session or token", body = ErrorBody),
        (status = 403, description = "Cross-site request refused", body = ErrorBody),
        (status = 404, description = "No such ticket (either one)", body = ErrorBody),
        (status = 409, description = "A ticket into itself, or either ticket merged already", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Unknown field", body = ErrorBody),
    )
)]
pub async fn merge(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(number): ApiPath<i64>,
    ApiJson(request): ApiJson<MergeRequest>,
) -> ApiResult<Json<Merged>> {
    let from = find(&state, &actor, number).await?;
    let into = find(&state, &actor, request.into).await?;
    state
        .store()
        .merge_tickets(
            from.id,
            into.id,
            actor.user_id(),
            &actor.label(),
            state.now(),
        )
        .await?;
    let merged = find(&state, &actor, from.number).await?;
    let into = find(&state, &actor, into.number).await?;
    Ok(Json(Merged {
        merged: (&merged).into(),
        into: (&into).into(),
    }))
}
